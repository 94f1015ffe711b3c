"""s3_public_access at the pipeline level. DAG-level cases are in tests/dags/test_remediation_dags.py."""

from local.scenarios import public_access_block, public_bucket
from matcarv_aiops.approvals import ApprovalStore
from matcarv_aiops.remediations.s3_public_access import S3PublicAccess
from matcarv_aiops.settings import get_settings
from tests.events import cloudtrail_event

EVENT = {"event": cloudtrail_event("s3", "PutBucketPolicy", {"bucketName": "team-share"})}


def approve(execution_id):
    ApprovalStore(get_settings()).decide(execution_id, approve=True, approver="alice", reason="ok to fix")


def test_always_waits_then_blocks_public_access(remediate):
    s3, bucket = public_bucket()
    assert remediate("s3_public_access", EVENT).records["wait_for_approval"].done is None  # no human: waits
    run = remediate("s3_public_access", EVENT, run_id="manual__second", decide=approve)
    assert run.outcome is None  # the same event: the first run owns it
    fresh = {"event": cloudtrail_event("s3", "DeleteBucketPublicAccessBlock", {"bucketName": bucket})}
    run = remediate("s3_public_access", fresh, decide=approve)
    assert run.outcome == "SUCCESS" and run.audit.operator == "alice"
    assert all(public_access_block(s3, bucket).values())


def test_validation_failure_is_failure_without_rollback(remediate, monkeypatch):
    monkeypatch.setattr(S3PublicAccess, "execute", lambda self, ctx, state: {"applied": {}})
    s3, bucket = public_bucket()
    run = remediate("s3_public_access", EVENT, decide=approve)
    assert run.outcome == "FAILURE" and not run.record("rollback").done["rolled_back"]
    assert not any(public_access_block(s3, bucket).values())


def test_missing_bucket_is_skipped(remediate):
    run = remediate("s3_public_access", EVENT)
    assert run.outcome == "SKIPPED" and "no longer exists" in run.audit.action
