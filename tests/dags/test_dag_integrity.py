"""Every DAG file imports cleanly, is well-formed, and makes no AWS call or Variable read at parse time."""

from __future__ import annotations

import json
import subprocess
import sys

from matcarv_aiops.catalogue import catalogue
from tests.conftest import REPO

PARSE_WITH_AWS_AND_VARIABLES_BLOCKED = f"""
import json, botocore.client, botocore.endpoint
def refuse(*a, **k):
    raise RuntimeError("AWS call at DAG parse time")
botocore.client.BaseClient._make_api_call = refuse
botocore.endpoint.Endpoint.make_request = refuse
import airflow.sdk
def no_variables(*a, **k):
    raise RuntimeError("Variable read at DAG parse time")
airflow.sdk.Variable.get = staticmethod(no_variables)
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(REPO / "dags")!r})
errors = {{k: str(v) for k, v in bag.import_errors.items()}}
print(json.dumps({{"errors": errors, "dags": sorted(bag.dag_ids)}}))
"""


def test_dags_parse_without_aws_or_variables():
    out = subprocess.run(
        [sys.executable, "-c", PARSE_WITH_AWS_AND_VARIABLES_BLOCKED],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["errors"] == {}
    expected = {entry.dag_id for entry in catalogue().values()} | {"approve_remediation", "audit_reconciler"}
    assert expected <= set(result["dags"])


def test_every_dag_has_owner_tags_retries_and_no_catchup(dagbag):
    assert dagbag.dag_ids
    for dag_id in dagbag.dag_ids:
        dag = dagbag.get_dag(dag_id)
        assert dag.catchup is False, dag_id
        assert dag.tags, dag_id
        assert dag.doc_md, dag_id
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", (dag_id, task.task_id)
        assert dag.default_args.get("retries", 0) >= 1, dag_id


def test_remediation_dags_have_the_pipeline_shape(dagbag):
    from matcarv_aiops.pipeline import steps_for

    for entry in catalogue().values():
        dag = dagbag.get_dag(entry.dag_id)
        steps = steps_for(entry)
        assert [t.task_id for t in dag.topological_sort()] == [s.task_id for s in steps]
        for step in steps:
            assert dag.get_task(step.task_id).trigger_rule == step.trigger_rule, (entry.id, step.task_id)
        assert dag.get_task("audit").trigger_rule == "all_done"
        assert dag.get_task("rollback").trigger_rule == "one_failed"
        assert ("wait_for_automation" in dag.task_ids) == bool(entry.ssm_document), entry.id
        assert dag.get_task("wait_for_approval").mode == "reschedule"
        # Nothing to render, so no task spends an execution API call storing rendered fields.
        assert all(not task.template_fields for task in dag.tasks), entry.id
