"""`make demo`: the whole system, locally, against an embedded AWS.

Starts moto_server and `airflow standalone` on 127.0.0.1 with this repository's DAGs, deploys the CDK
app's synthesized stacks into the simulated AWS through CloudFormation (local/stack.py), creates one real
problem per remediation it demonstrates (plus a production resource and an exempt one), sends their
real-format EventBridge events through the trigger handler (the Lambda's own code) to the local Airflow REST
API, approves or rejects what waits for a human by triggering `approve_remediation` as the user `alice`,
waits for every run, prints the audit table, and stops everything. Exits 0 only when every outcome is the
expected one.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aiops_local.cloudformation import MEMBER_ACCOUNT, OTHER_REGION  # noqa: E402
from local import scenarios  # noqa: E402
from local.stack import APPROVER_USER, LocalStack, local_stack, use_stack_environment  # noqa: E402
from tests.events import alarm_event, cloudtrail_event  # noqa: E402

RUN_TIMEOUT_SECONDS = 600


@dataclass
class Scenario:
    title: str
    remediation: str
    target_suffix: str  # the end of the target ARN, to find its audit record
    event: dict
    outcome: str  # expected
    decision: str | None = None  # what alice decides, for a run that waits for a human
    sent_at: float = 0.0


def create_problems() -> tuple[list[Scenario], dict]:
    s3, bucket = scenarios.public_bucket("demo-public-bucket")
    sqs, dlq, source = scenarios.dead_letter_queue(150, name="payments-dlq")
    scenarios.dead_letter_queue(150, name="ledger-dlq", tags={"Environment": "prod"})
    scenarios.dead_letter_queue(150, name="legacy-dlq", tags={"aiops:exempt": "true"})
    ec2, instance = scenarios.failing_instance(tags={"Name": "demo-web-1"})
    route53, zone, primary_check = scenarios.failing_over_dns()
    lb, cloudfront, dist = scenarios.alb_with_5xx()
    _, group = scenarios.world_open_ssh()
    _, finding_bucket, finding_event = scenarios.public_bucket_reported_by_security_hub(
        "demo-findings-bucket"
    )
    # In a member account's second Region: its regional stack forwards the event to the hub's bus.
    eu_ec2, eu_group, eu_event = scenarios.world_open_ssh_elsewhere(
        "eu-bastion", account=MEMBER_ACCOUNT, region=OTHER_REGION
    )

    def dlq_alarm(queue):
        return alarm_event("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": queue})

    world_ssh = {
        "items": [
            {
                "ipProtocol": "tcp",
                "fromPort": 22,
                "toPort": 22,
                "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
            }
        ]
    }
    runs = [
        Scenario(
            "public S3 bucket (irreversible: always approved by a human)",
            "s3_public_access",
            ":::demo-public-bucket",
            cloudtrail_event("s3", "DeleteBucketPublicAccessBlock", {"bucketName": bucket}),
            "SUCCESS",
            "approve",
        ),
        Scenario(
            "public S3 bucket reported by Security Hub ([S3.8] finding; approved by a human)",
            "s3_public_access",
            ":::demo-findings-bucket",
            finding_event,
            "SUCCESS",
            "approve",
        ),
        Scenario(
            "DLQ over 100 messages (automatic)",
            "sqs_dlq_depth_high",
            ":payments-dlq",
            dlq_alarm("payments-dlq"),
            "SUCCESS",
        ),
        Scenario(
            "EC2 status check failed (SSM Automation document)",
            "ec2_status_check_failed",
            f"instance/{instance}",
            alarm_event("AWS/EC2", "StatusCheckFailed", {"InstanceId": instance}),
            "SUCCESS",
        ),
        Scenario(
            "Route 53 health check failed (orchestrated failover)",
            "route53_health_check_failed",
            f"healthcheck/{primary_check}",
            alarm_event("AWS/Route53", "HealthCheckStatus", {"HealthCheckId": primary_check}),
            "SUCCESS",
        ),
        Scenario(
            "ALB 5xx spike (automatic CloudFront invalidation)",
            "alb_5xx_spike",
            scenarios.lb_dimension(lb),
            alarm_event(
                "AWS/ApplicationELB",
                "HTTPCode_Target_5XX_Count",
                {"LoadBalancer": scenarios.lb_dimension(lb)},
            ),
            "SUCCESS",
        ),
        Scenario(
            "security group with SSH open to the world (always approved)",
            "sg_open_ssh",
            f"security-group/{group}",
            cloudtrail_event(
                "ec2", "AuthorizeSecurityGroupIngress", {"groupId": group, "ipPermissions": world_ssh}
            ),
            "SUCCESS",
            "approve",
        ),
        Scenario(
            f"security group with SSH open in a member account's {OTHER_REGION} (fixed there; approved)",
            "sg_open_ssh",
            f"{OTHER_REGION}:{MEMBER_ACCOUNT}:security-group/{eu_group}",
            eu_event,
            "SUCCESS",
            "approve",
        ),
        Scenario(
            "production DLQ: waits for a human, who rejects",
            "sqs_dlq_depth_high",
            ":ledger-dlq",
            dlq_alarm("ledger-dlq"),
            "SKIPPED",
            "reject",
        ),
        Scenario(
            "exempt DLQ (tag aiops:exempt=true): left alone",
            "sqs_dlq_depth_high",
            ":legacy-dlq",
            dlq_alarm("legacy-dlq"),
            "SKIPPED",
        ),
    ]
    checks = {
        "s3": (s3, bucket),
        "s3-finding": finding_bucket,
        "sqs": (sqs, dlq, source),
        "ec2": (ec2, instance),
        "route53": (route53, zone),
        "cloudfront": (cloudfront, dist),
        "sg": group,
        "sg-eu": (eu_ec2, eu_group),
    }
    return runs, checks


def send(stack: LocalStack, runs: list[Scenario]) -> list[tuple[str, str]]:
    """Each event through the Lambda handler, as EventBridge would deliver it, with the trigger Lambda
    role's credentials. Returns (dag_id, run_id)."""
    started = []
    for scenario in runs:
        scenario.sent_at = time.time()
        outcome = stack.invoke_trigger(scenario.event)
        for match in outcome.get("matches", []):
            started.append((match["dag_id"], match["dag_run_id"]))
            print(
                f"  event {scenario.event['id'][:8]} -> {match['dag_id']} run {match['dag_run_id']} "
                f"({match.get('status')})"
            )
    return started


def decide_pending(stack: LocalStack, runs: list[Scenario], decided: set[str]) -> None:
    """Alice answers each approval request the way the scenario says, through approve_remediation."""
    from matcarv_aiops.settings import get_settings

    table = get_settings().platform.approvals_table
    for item in stack.aws_client("dynamodb").scan(TableName=table)["Items"]:
        execution, status = item["executionId"]["S"], item["status"]["S"]
        if status != "PENDING" or execution in decided:
            continue
        scenario = next((s for s in runs if item["targetResource"]["S"].endswith(s.target_suffix)), None)
        if scenario is None or scenario.decision is None:
            continue
        reason = {"approve": "diagnostics reviewed, go ahead", "reject": "ledger is mid-migration: not now"}
        code, body = stack.api(
            "POST",
            "/dags/approve_remediation/dagRuns",
            {
                "dag_run_id": f"decision_{execution}",
                "logical_date": None,
                "conf": {
                    "execution_id": execution,
                    "decision": scenario.decision,
                    "reason": reason[scenario.decision],
                },
            },
            user=APPROVER_USER,
        )
        if code not in (200, 201, 409):  # 409: a retried request whose first try went through
            raise RuntimeError(f"triggering approve_remediation as {APPROVER_USER} answered {code}: {body}")
        decided.add(execution)
        print(f"  {APPROVER_USER} {scenario.decision}s execution {execution[:8]} ({scenario.remediation})")


def progress(stack: LocalStack, started: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Each run's state, and what an unfinished one waits on."""
    states = {}
    for dag_id, run_id in started:
        _, run = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        state = run.get("state", "unknown") if isinstance(run, dict) else "unknown"
        if state not in ("success", "failed"):
            _, tis = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
            waiting = [
                t["task_id"]
                # a busy API server may answer with an error text: no task states this time
                for t in (tis if isinstance(tis, dict) else {}).get("task_instances", [])
                if t.get("state") in ("up_for_reschedule", "running", "queued", "scheduled")
            ]
            state = f"{state}, at {', '.join(waiting) or 'the scheduler'}"
        states[(dag_id, run_id)] = state
    return states


def audit_table(stack: LocalStack, runs: list[Scenario]) -> tuple[list[dict], bool]:
    from matcarv_aiops.settings import get_settings

    items = [
        {k: v["S"] for k, v in item.items()}
        for item in stack.aws_client("dynamodb").scan(TableName=get_settings().platform.audit_table)["Items"]
        if item["runbook"]["S"].startswith("remediate_")
    ]
    ok = True
    print(f"\n{'target':58} {'outcome':8} {'operator':10} {'secs':>5}  action")
    for item in sorted(items, key=lambda i: i["timestamp"]):
        scenario = next(
            (
                s
                for s in runs
                if item["targetResource"].endswith(s.target_suffix)
                and item["runbook"] == f"remediate_{s.remediation}"
            ),
            None,
        )
        audited = datetime.fromisoformat(item["timestamp"].replace("Z", "+00:00")).timestamp()
        seconds = f"{audited - scenario.sent_at:5.1f}" if scenario else "    -"
        # A run a scenario did not ask for is another entry the same event matched: it must not act.
        expected = scenario.outcome if scenario else "SKIPPED"
        mark = "" if item["outcome"] == expected else f"   <-- expected {expected}"
        ok = ok and not mark
        print(
            f"{item['targetResource'][-58:]:58} {item['outcome']:8} {item['operator'][:10]:10} {seconds}  "
            f"{item['runbook'].removeprefix('remediate_')}: {item['action'][:80]}{mark}"
        )
    for scenario in runs:
        if not any(
            i["targetResource"].endswith(scenario.target_suffix)
            and i["runbook"] == f"remediate_{scenario.remediation}"
            for i in items
        ):
            print(f"MISSING: no audit record for {scenario.title}")
            ok = False
    return items, ok


def main() -> int:
    port = int(os.environ.get("AIOPS_DEMO_PORT", "0")) or None
    print("starting moto_server and airflow standalone on 127.0.0.1 (about a minute) ...", flush=True)
    with local_stack(airflow_port=port) as stack:
        print(
            f"  Airflow UI: {stack.airflow_url}  (admin / {stack.password}; "
            f"{APPROVER_USER} / {stack.passwords[APPROVER_USER]})"
        )
        use_stack_environment(stack)
        print(f"deployed the synthesized stacks into the simulated AWS: {stack.deployment.summary()}")
        print(
            "IAM enforced: problems created as the admin user, Airflow's tasks as AIOpsMwaaExecutionRole "
            "(and the roles it assumes), events sent as the trigger Lambda's role"
        )
        runs, checks = create_problems()
        print(f"created {len(runs)} real problems")
        # The remediations and the approval DAG; the scheduled maintenance jobs stay paused in the demo.
        _, dags = stack.api("GET", "/dags?limit=100")
        for dag in dags["dags"]:
            if dag["dag_id"].startswith("remediate_") or dag["dag_id"] == "approve_remediation":
                stack.unpause(dag["dag_id"])
        print("sending the EventBridge events through the trigger handler:")
        started = send(stack, runs)
        decided: set[str] = set()
        deadline, last = time.monotonic() + RUN_TIMEOUT_SECONDS, None
        while time.monotonic() < deadline:
            decide_pending(stack, runs, decided)
            states = progress(stack, started)
            shown = sorted(f"{d.removeprefix('remediate_')}: {s}" for (d, _), s in states.items())
            if shown != last:
                print(f"[{time.strftime('%H:%M:%S')}] " + "; ".join(shown), flush=True)
                last = shown
            if all(s in ("success", "failed") for s in states.values()):
                break
            time.sleep(2)
        else:
            print(f"runs still unfinished after {RUN_TIMEOUT_SECONDS} s")
            return 1
        items, ok = audit_table(stack, runs)
        s3, bucket = checks["s3"]
        sqs, dlq, source = checks["sqs"]
        ec2, instance = checks["ec2"]
        route53, zone = checks["route53"]
        cloudfront, dist = checks["cloudfront"]
        invalidations = cloudfront.list_invalidations(DistributionId=dist)["InvalidationList"].get(
            "Quantity", 0
        )
        state = {
            "bucket Block Public Access all on": all(scenarios.public_access_block(s3, bucket).values()),
            "Security Hub's bucket Block Public Access all on": all(
                scenarios.public_access_block(s3, checks["s3-finding"]).values()
            ),
            "payments-dlq drained into its source": scenarios.queue_depth(sqs, dlq) == 0
            and scenarios.queue_depth(sqs, source) == 150,
            "instance running after stop/start": scenarios.instance_state(ec2, instance) == "running",
            "DNS failed over to the secondary": scenarios.failover_roles(route53, zone).get("eu-west-1")
            == "PRIMARY",
            "CloudFront invalidation created": invalidations >= 1,
            "world SSH rule revoked, office rule kept": scenarios.ssh_rules(ec2, checks["sg"])
            == ["198.51.100.0/24"],
            f"{OTHER_REGION}: world SSH rule revoked in the member account": scenarios.ssh_rules(
                *checks["sg-eu"]
            )
            == ["198.51.100.0/24"],
        }
        print()
        for what, good in state.items():
            print(f"  {'ok ' if good else 'BAD'} {what}")
        ok = ok and all(state.values())
        print(f"\nThe Airflow UI was at {stack.airflow_url} (stopped now; `make up` keeps one running).")
        print("DEMO OK: every outcome is the expected one" if ok else "DEMO FAILED: see the marks above")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
