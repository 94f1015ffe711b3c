"""Who requested a run: the user Airflow recorded as triggering it, never the conf; the platform's own
service user and runs nobody triggered (schedules) are "automated"."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from matcarv_aiops.pipeline.protocol import AUTOMATED, requester
from matcarv_aiops.pipeline.xcom import XComRun
from matcarv_aiops.settings import Settings
from tests.events import cloudtrail_event


@pytest.mark.parametrize(
    "triggering_user,expected",
    [(None, AUTOMATED), ("", AUTOMATED), ("admin", AUTOMATED), ("alice", "alice"), (" bob ", "bob")],
)
def test_the_triggering_user_is_the_requester_unless_it_is_the_platform(triggering_user, expected):
    assert requester(triggering_user, Settings(service_users=("admin",))) == expected


def test_an_airflow_task_reads_the_requester_from_its_dag_run_not_from_the_conf(settings):
    event = cloudtrail_event("s3", "DeleteBucketPublicAccessBlock", {"bucketName": "b"})
    dag_run = SimpleNamespace(
        dag_id="remediate_s3_public_access",
        run_id="manual__x",
        conf={"event": event, "requested_by": "automated"},  # whoever triggers writes the conf
        triggering_user_name="carol",
    )
    run = XComRun("s3_public_access", {"dag_run": dag_run, "ti": SimpleNamespace()})
    assert run.requested_by == "carol"
    scheduled = SimpleNamespace(dag_id="d", run_id="scheduled__x", conf={}, triggering_user_name=None)
    assert XComRun("s3_public_access", {"dag_run": scheduled, "ti": None}).requested_by == AUTOMATED
