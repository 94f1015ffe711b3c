from __future__ import annotations

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag


@pytest.fixture
def run_dag(dagbag, aws):
    """Run a DAG in-process (moto applies) and return (dag_run, task states by task id)."""

    def run(dag_id: str, conf: dict):
        dag = dagbag.get_dag(dag_id)
        dag_run = dag.test(run_conf=conf)
        states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
        return dag_run, states

    return run


@pytest.fixture
def audit_items(aws):
    import boto3

    def items() -> list[dict]:
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        raw = ddb.scan(TableName=aws.platform.audit_table)["Items"]
        return [{k: v["S"] for k, v in item.items()} for item in raw]

    return items
