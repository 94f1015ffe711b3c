"""A task process builds only the DAG it runs: dags/remediation_dags.py reads Airflow's parsing context."""

import runpy

from tests.conftest import REPO

FACTORY = str(REPO / "dags" / "remediation_dags.py")


def _remediation_dags(namespace: dict) -> list[str]:
    return sorted(name for name in namespace if name.startswith("remediate_"))


def test_the_dag_processor_builds_every_remediation_dag(monkeypatch):
    from matcarv_aiops.catalogue import catalogue

    monkeypatch.delenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", raising=False)
    assert _remediation_dags(runpy.run_path(FACTORY)) == sorted(e.dag_id for e in catalogue().values())


def test_a_task_process_builds_only_its_own_dag(monkeypatch):
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "remediate_sg_open_ssh")
    namespace = runpy.run_path(FACTORY)
    assert _remediation_dags(namespace) == ["remediate_sg_open_ssh"]
    assert [t.task_id for t in namespace["remediate_sg_open_ssh"].tasks][0] == "collect_diagnostics"
