"""`make demo`: the three core remediations end to end, in-process, against an embedded AWS (moto).

Creates a real problem for each remediation, sends a real-format EventBridge event to its DAG, approves
the one that needs a human, and prints the audit records from the AutomationAuditLog table. Exits 0 only
when every outcome is the expected one.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
_home = tempfile.mkdtemp(prefix="aiops-demo-airflow-")
os.environ.update({
    "AIRFLOW_HOME": _home,
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_home}/airflow.db",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
    "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_DEFAULT_REGION": "us-east-1",
    "AIOPS_APPROVAL_POKE_SECONDS": "1",
})
os.environ.pop("AWS_ENDPOINT_URL", None)

APPROVER = "alice@example.com"


def approve_when_asked(stop: threading.Event, decided: list[str]) -> None:
    """What an approver does after the SNS message: records the decision (the approve_remediation DAG's
    own code path) for the pending request."""
    import boto3

    from matcarv_aiops.approvals import ApprovalStore

    store = ApprovalStore.default()
    while not stop.is_set():
        for item in boto3.client("dynamodb").scan(TableName=store.settings.approvals_table)["Items"]:
            if item["status"]["S"] == "PENDING":
                store.decide(item["executionId"]["S"], approve=True, approver=APPROVER,
                             reason="diagnostics reviewed in the demo")
                decided.append(item["executionId"]["S"])
                print(f"  approval: {APPROVER} approved execution {item['executionId']['S']}")
        time.sleep(0.5)


def main() -> int:
    from moto import mock_aws

    from local import scenarios
    from tests.events import alarm_event, cloudtrail_event

    with mock_aws():
        import boto3
        from airflow.dag_processing.dagbag import DagBag
        from airflow.utils import db

        from matcarv_aiops.provision import provision_platform
        from matcarv_aiops.settings import get_settings

        print("provisioning the embedded AWS account (moto): tables, diagnostics bucket, topic")
        provision_platform(get_settings())
        db.initdb()
        bag = DagBag(dag_folder=str(REPO / "dags"))
        if bag.import_errors:
            print(f"DAG import errors: {bag.import_errors}")
            return 1

        s3, bucket = scenarios.public_bucket("demo-public-bucket")
        sqs, dlq, source = scenarios.dead_letter_queue(150, name="payments-dlq")
        ec2, instance = scenarios.failing_instance(tags={"Name": "demo-web-1"})
        runs = [
            ("remediate_s3_public_access",
             cloudtrail_event("s3", "DeleteBucketPublicAccessBlock", {"bucketName": bucket}), "SUCCESS"),
            ("remediate_sqs_dlq_depth_high",
             alarm_event("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "payments-dlq"}), "SUCCESS"),
            ("remediate_ec2_status_check_failed",
             alarm_event("AWS/EC2", "StatusCheckFailed", {"InstanceId": instance}), "SUCCESS"),
        ]
        stop, decided = threading.Event(), []
        approver = threading.Thread(target=approve_when_asked, args=(stop, decided), daemon=True)
        approver.start()
        try:
            for dag_id, event, _ in runs:
                print(f"running {dag_id} for event {event['id']} ...")
                started = time.monotonic()
                bag.get_dag(dag_id).test(run_conf={"event": event})
                print(f"  finished in {time.monotonic() - started:.1f} s")
        finally:
            stop.set()
            approver.join(5)

        ddb = boto3.client("dynamodb")
        items = [{k: v["S"] for k, v in i.items()} for i in ddb.scan(TableName=get_settings().audit_table)["Items"]]
        by_runbook = {i["runbook"]: i for i in items}
        print("\nAutomationAuditLog")
        print(f"{'runbook':36} {'target':48} {'outcome':8} {'operator':18} action")
        for item in sorted(items, key=lambda i: i["timestamp"]):
            print(f"{item['runbook']:36} {item['targetResource'][:48]:48} {item['outcome']:8} "
                  f"{item['operator']:18} {item['action'][:90]}")
        ok = len(items) == len(runs) and all(by_runbook.get(d, {}).get("outcome") == want for d, _, want in runs)
        pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        ok = ok and all(pab.values()) and scenarios.queue_depth(sqs, dlq) == 0
        print(f"\nbucket {bucket}: Block Public Access {pab}")
        print(f"queue payments-dlq: {scenarios.queue_depth(sqs, dlq)} messages left; "
              f"source queue: {scenarios.queue_depth(sqs, source)}")
        print(f"instance {instance}: {scenarios.instance_state(ec2, instance)}")
        print("\nDEMO OK: every outcome is the expected one" if ok else "\nDEMO FAILED: unexpected outcomes")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
