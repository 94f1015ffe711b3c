import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from matcarv_aiops.catalogue import CatalogueError, catalogue, load_catalogue
from matcarv_aiops.remediations import load_all
from tests.conftest import REPO

CORE_IDS = {"s3_public_access", "sqs_dlq_depth_high", "ec2_status_check_failed"}


def write_entry(tmp_path: Path, **changes) -> Path:
    entry = yaml.safe_load(
        (REPO / "plugins/matcarv_aiops/catalogue/entries/sqs_dlq_depth_high.yaml").read_text()
    )
    entry.update(changes)
    entry = {k: v for k, v in entry.items() if v is not None}
    (tmp_path / f"{entry['id']}.yaml").write_text(yaml.safe_dump(entry))
    return tmp_path


def test_packaged_catalogue_is_valid_and_has_the_core_entries():
    entries = catalogue()
    assert set(entries) >= CORE_IDS
    for entry in entries.values():
        assert entry.dag_id == f"remediate_{entry.id}"


def test_every_entry_has_a_remediation_module():
    assert set(load_all()) >= set(catalogue())


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
        ({"permissions": ["sqs:*"]}, "must be one exact 'service:Action'"),
        ({"permissions": ["*"]}, "must be one exact 'service:Action'"),
        ({"no_rollback_reason": None}, "give exactly one of 'rollback'"),
        ({"approval": "sometimes"}, "approval"),
        ({"trigger": {"detail-type": ["X"]}}, "must match on 'source'"),
        ({"trigger": {"source": "aws.sqs"}}, "a pattern leaf must be a non-empty array"),
        ({"trigger": {"source": [{"regex": "x"}]}}, "unsupported pattern operator"),
        ({"targets": [{"paths": ["detail.x"], "arn": "arn:aws:sqs:::q"}]}, "must contain {value}"),
    ],
)
def test_schema_errors_name_the_entry_and_field(tmp_path, changes, message):
    with pytest.raises(CatalogueError) as err:
        load_catalogue(write_entry(tmp_path, **changes))
    assert "catalogue entry 'sqs_dlq_depth_high' (sqs_dlq_depth_high.yaml)" in str(err.value)
    assert message in str(err.value)


def test_file_name_must_match_id(tmp_path):
    path = write_entry(tmp_path)
    (path / "sqs_dlq_depth_high.yaml").rename(path / "other.yaml")
    with pytest.raises(CatalogueError, match="file name must be sqs_dlq_depth_high.yaml"):
        load_catalogue(path)


def test_resolve_target_from_alarm_and_cloudtrail_events():
    from tests.events import alarm_event, cloudtrail_event

    entries = catalogue()
    sqs = entries["sqs_dlq_depth_high"].resolve_target(
        alarm_event("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "orders-dlq"})
    )
    assert sqs.arn == "arn:aws:sqs:us-east-1:123456789012:orders-dlq"
    s3 = entries["s3_public_access"].resolve_target(
        cloudtrail_event("s3", "PutBucketAcl", {"bucketName": "b1"})
    )
    assert s3.arn == "arn:aws:s3:::b1" and s3.account == "123456789012"
    assert entries["s3_public_access"].resolve_target(cloudtrail_event("s3", "PutBucketAcl", {})) is None


def test_cli_catalogue_json():
    out = subprocess.run(
        [sys.executable, "-m", "matcarv_aiops.cli", "catalogue", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = json.loads(out)
    assert {e["id"] for e in listed} == set(catalogue())
    assert all(e["dag_id"] == f"remediate_{e['id']}" and e["permissions"] and e["trigger"] for e in listed)
