"""Test environment: a throwaway Airflow home and fake AWS credentials, set before Airflow is imported.

AWS is moto, in-process (`mock_aws`). DAG tests share one pytest process and one metadata DB, because
the first dag.test() in a process is slow.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="aiops-test-airflow-")

os.environ.update(
    {
        "AIRFLOW_HOME": _AIRFLOW_HOME,
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        # Fast clocks for tests; the semantics are the same as production's.
        "AIOPS_APPROVAL_POKE_SECONDS": "1",
        "AIOPS_TASK_RETRIES": "1",
        "AIOPS_TASK_RETRY_DELAY_SECONDS": "1",
        # The approver group: the humans the tests decide as (dag_test: dag.test()'s triggering user).
        "AIOPS_APPROVERS": "alice,alice@example.com,bob,bob@example.com,carol@example.com,carol,dan,erin,"
        "dag_test,arn:aws:iam::123456789012:user/oncall",
        # moto's account is a known non-production account: its untagged resources are not production
        # (an account of unknown class would make them so).
        "AIOPS_NON_PRODUCTION_ACCOUNTS": "123456789012",
        # moto has no SSM Automation API: documents run with the local runner against moto.
        "AIOPS_SSM_BACKEND": "local",
        "AIOPS_SSM_POLL_SECONDS": "0.2",
        "AIOPS_SSM_RETRY_SECONDS": "0.1",
        "AIOPS_SSM_LOCAL_STATE_DIR": os.path.join(_AIRFLOW_HOME, "ssm-executions"),
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture
def settings(monkeypatch):
    """Fresh settings per test; tests may monkeypatch AIOPS_* before asking for them."""
    from matcarv_aiops.settings import reload_settings

    yield reload_settings()
    reload_settings()


@pytest.fixture
def aws(settings):
    """moto, with the platform's tables, bucket and topic provisioned."""
    from moto import mock_aws

    from matcarv_aiops.provision import provision_platform

    with mock_aws():
        provision_platform(settings)
        yield settings


@pytest.fixture
def assume_calls(aws, monkeypatch):
    """Every AssumeRole request the hub makes, as sent; the remediation role template set (multi-account)."""
    monkeypatch.setenv(
        "AIOPS_REMEDIATION_ROLE_ARN_TEMPLATE", "arn:aws:iam::{account}:role/AIOpsRemediation-{remediation}"
    )
    from matcarv_aiops import aws as aws_module
    from matcarv_aiops.settings import reload_settings

    reload_settings()
    monkeypatch.setattr(aws_module, "_clients", {})  # a fresh STS client, so the hook is this test's only
    monkeypatch.setattr(aws_module, "_assumed", {})
    calls: list[dict] = []
    sts = aws_module.hub_client("sts")
    sts.meta.events.register("provide-client-params.sts.AssumeRole", lambda params, **_: calls.append(params))
    return calls


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata database (SQLite in the throwaway home), made once per process: the DAG tests
    and the UI plugin's tests (the API's JWT check reads its revoked tokens) share it."""
    from airflow.utils import db

    db.initdb()


@pytest.fixture(scope="session")
def running_stack():
    """moto_server (the CDK app's stacks deployed into it) + airflow standalone, started once per test
    session and always stopped."""
    from local.stack import local_stack

    with local_stack() as stack:
        # Remediations and approvals; the scheduled maintenance jobs stay paused (they have their own tests).
        stack.unpause(
            *[
                dag["dag_id"]
                for dag in stack.api("GET", "/dags?limit=100")[1]["dags"]
                if dag["dag_id"].startswith("remediate_") or dag["dag_id"] == "approve_remediation"
            ]
        )
        yield stack


@pytest.fixture
def stack_env(running_stack, monkeypatch):
    """This process pointed at the running stack (its moto server, its Airflow, its settings), its AWS
    calls made as the stack's admin IAM user (IAM is enforced there: the suite's fake keys are refused)."""
    from local.stack import CREDENTIAL_VARIABLES
    from matcarv_aiops.ingress import handler as lambda_module
    from matcarv_aiops.settings import reload_settings

    for key in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    for key, value in running_stack.env.items():
        if key.startswith(("AWS_", "AIOPS_")):
            monkeypatch.setenv(key, value)
    reload_settings()
    monkeypatch.setattr(lambda_module, "_client", None)
    yield running_stack
    monkeypatch.undo()
    reload_settings()


@pytest.fixture(scope="session")
def fault_report():
    """One row per fault case (tests/faults, tests/e2e), written as a Markdown table at the end of the
    session when ``FAULTS_REPORT`` names a file."""
    from tests.faults.invariants import FaultReport

    report = FaultReport()
    yield report
    report.save_part()


def pytest_sessionfinish(session):
    """After every worker has finished (or in the only process): the fault report, if asked for."""
    if not hasattr(session.config, "workerinput"):
        from tests.faults.invariants import FaultReport

        FaultReport.assemble()


# ``make test`` runs two pytest-xdist workers with ``--dist loadgroup``. These groups each run whole on one
# worker: the tests on the local stack (the session starts one stack) and the CDK tests (one synth, which
# tests/iam reads too). Every other test is scheduled on its own.
XDIST_GROUPS = {
    "stack": ("tests/e2e/", "tests/ingress/test_end_to_end.py"),
    "infra": ("tests/infra/", "tests/iam/"),
}


def xdist_group_of(nodeid: str) -> str | None:
    for group, prefixes in XDIST_GROUPS.items():
        if nodeid.startswith(prefixes):
            return group
    return None


def pytest_collection_modifyitems(config, items):
    """A test on the local stack outside the "stack" group would make its worker start a second stack."""
    misplaced = [
        item.nodeid
        for item in items
        if "running_stack" in item.fixturenames and xdist_group_of(item.nodeid) != "stack"
    ]
    if misplaced:
        raise pytest.UsageError(
            f"tests on the local stack outside XDIST_GROUPS['stack'] (tests/conftest.py): {misplaced}"
        )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` by XDIST_GROUPS. xdist's own loadgroup reads the groups from node ids that its
    worker suffixes with "@group"; on this pytest (9.2, structured node ids) that suffix no longer takes
    (pytest-xdist issue 1386), and each test went to either worker: both workers started a local stack
    and synthesized the CDK app. Grouping by path in the controller needs no node id rewrite."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class GroupsByPath(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of(nodeid) or nodeid

    return GroupsByPath(config, log)
