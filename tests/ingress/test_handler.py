"""The trigger Lambda's handler, driven as Lambda drives it, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from matcarv_aiops.ingress import handler as lambda_module
from matcarv_aiops.ingress.trigger_client import TriggerRejected, TriggerUnavailable
from matcarv_aiops.settings import reload_settings
from tests.conftest import REPO
from tests.ingress import samples
from tests.ingress.airflow_api import FakeAirflowApi


class LambdaContext:
    def __init__(self, remaining_ms: int = 30_000):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def airflow(monkeypatch):
    """The handler configured for the local backend, pointing at a fresh Airflow API on 127.0.0.1."""
    with FakeAirflowApi(password="pw") as api:
        for name, value in {
            "AIOPS_TRIGGER_BACKEND": "local",
            "AIOPS_AIRFLOW_BASE_URL": api.url,
            "AIOPS_AIRFLOW_API_USERNAME": "admin",
            "AIOPS_AIRFLOW_API_PASSWORD": "pw",
        }.items():
            monkeypatch.setenv(name, value)
        reload_settings()
        monkeypatch.setattr(lambda_module, "_client", None)
        yield api
    monkeypatch.undo()
    reload_settings()


def test_an_event_starts_its_run_once_even_when_delivered_twice(airflow, caplog):
    event = samples.load("cloudwatch_alarm_ec2_status_check.json")
    with caplog.at_level(logging.INFO, logger="matcarv_aiops.ingress"):
        first = lambda_module.handler(event, LambdaContext())
        again = lambda_module.handler(event, LambdaContext())
    assert [m["status"] for m in first["matches"]] == ["created"]
    assert [m["status"] for m in again["matches"]] == ["duplicate"]
    assert airflow.counts["created"] == 1
    (run,) = airflow.runs.values()
    assert run["dag_id"] == "remediate_ec2_status_check_failed" and run["logical_date"] is None
    assert run["conf"] == {"event": json.loads(json.dumps(event))}
    assert '"triggered"' in caplog.text


def test_a_redelivery_to_another_container_gets_409(airflow):
    event = samples.load("cloudwatch_alarm_sqs_dlq_depth.json")
    first = lambda_module.handler(event, LambdaContext())
    lambda_module._client = None  # a cold container: no memory of the first delivery
    outcome = lambda_module.handler(event, LambdaContext())
    assert [m["remediation"] for m in first["matches"]] == ["sqs_dlq_depth_high"]
    assert [m["status"] for m in outcome["matches"]] == ["duplicate"]
    assert (airflow.counts["created"], airflow.counts["duplicate"]) == (1, 1)


@pytest.mark.parametrize(
    "event",
    [
        "{not json",
        {"id": "x", "source": "aws.s3"},
        {**samples.load("cloudwatch_alarm_ok.json"), "account": "12345"},
    ],
)
def test_bad_input_is_one_log_line_returned_not_raised_and_triggers_nothing(airflow, caplog, event):
    with caplog.at_level(logging.INFO, logger="matcarv_aiops.ingress"):
        outcome = lambda_module.handler(event, LambdaContext())
    assert set(outcome) == {"rejected"} and "\n" not in outcome["rejected"]
    (record,) = [r for r in caplog.records if r.name == "matcarv_aiops.ingress"]
    assert record.levelno == logging.ERROR and record.exc_info is None
    assert json.loads(record.getMessage()) == {"rejected": outcome["rejected"]}
    assert airflow.counts["post"] == 0 and airflow.counts["token"] == 0


def test_an_event_that_matches_nothing_is_logged_as_ignored(airflow, caplog):
    with caplog.at_level(logging.INFO, logger="matcarv_aiops.ingress"):
        outcome = lambda_module.handler(samples.load("cloudwatch_alarm_ok.json"), LambdaContext())
    assert outcome["matches"] == [] and "detail.state.value does not match" in outcome["ignored"]
    assert "ignored" in caplog.text and airflow.counts["post"] == 0


def test_a_well_formed_event_from_a_source_no_entry_listens_to_returns_normally_as_ignored(airflow, caplog):
    event = {**samples.load("cloudwatch_alarm_ok.json"), "source": "com.example"}
    with caplog.at_level(logging.INFO, logger="matcarv_aiops.ingress"):
        outcome = lambda_module.handler(event, LambdaContext())  # returns: no Lambda retry, no DLQ record
    assert outcome["matches"] == [] and outcome["ignored"].startswith("source: 'com.example' is not a source")
    (record,) = [r for r in caplog.records if r.name == "matcarv_aiops.ingress"]
    assert record.levelno == logging.INFO and json.loads(record.getMessage())["ignored"] == outcome["ignored"]
    assert airflow.counts["post"] == 0 and airflow.counts["token"] == 0


def test_a_backend_that_stays_down_raises_so_eventbridge_retries(airflow):
    event = samples.load("cloudtrail_s3_delete_public_access_block.json")
    for _ in range(100):
        airflow.script((503, {"detail": "Service Unavailable"}))
    # 1.5 s left, 1 s of safety margin: the retries stop well inside the Lambda's time.
    with pytest.raises(TriggerUnavailable, match="out of time: 503"):
        lambda_module.handler(event, LambdaContext(remaining_ms=1500))
    airflow.scripted.clear()
    outcome = lambda_module.handler(event, LambdaContext())  # EventBridge's retry
    assert [m["status"] for m in outcome["matches"]] == ["created"] and airflow.counts["created"] == 1


def test_a_configuration_error_raises(airflow):
    airflow.script((404, {"detail": "The Dag with ID: `remediate_s3_public_access` was not found"}))
    with pytest.raises(TriggerRejected, match="404.*was not found"):
        lambda_module.handler(samples.load("cloudtrail_s3_delete_public_access_block.json"), LambdaContext())


def test_the_handler_module_imports_no_airflow_no_boto3_and_no_pydantic():
    code = (
        "import sys, matcarv_aiops.ingress.handler; print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'airflow', 'boto3', 'botocore', 'yaml', 'pydantic'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.strip()
    # yaml is imported when the catalogue is first loaded; boto3 when the MWAA backend is first used; pydantic
    # never in the Lambda (the envelope is validated by pydantic-core), here with the YAML catalogue.
    assert loaded == "[]"
