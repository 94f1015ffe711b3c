"""Event-to-audit latency on the local stack (moto_server + airflow standalone), run by hand:

    .venv/bin/python bench/e2e_latency.py [--per-kind 20]

Sends N events per remediation kind through the trigger handler, one at a time (the latency of one
remediation, not of a backlog), and reports p50/p95 from the event to its audit record, with a
breakdown read from the Airflow REST API: the trigger call, queueing in the scheduler (run created ->
first task started), task start overhead (summed over the run's tasks: scheduled -> started), and the
action itself (the execute task's run time).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from local import scenarios  # noqa: E402
from local.stack import local_stack, use_stack_environment  # noqa: E402
from tests.events import alarm_event  # noqa: E402


def ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def problems(kind: str, index: int) -> tuple[dict, str]:
    if kind == "sqs_dlq_depth_high":
        name = f"bench-{index}-dlq"
        scenarios.dead_letter_queue(150, name=name)
        return alarm_event("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": name}), f":{name}"
    lb, _, _ = scenarios.alb_with_5xx(name=f"bench-{index}")
    dimension = scenarios.lb_dimension(lb)
    return alarm_event(
        "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", {"LoadBalancer": dimension}
    ), dimension


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-kind", type=int, default=20)
    parser.add_argument("--kinds", default="sqs_dlq_depth_high,alb_5xx_spike")
    args = parser.parse_args()
    rows = []
    with local_stack() as stack:
        use_stack_environment(stack)
        from matcarv_aiops.ingress.handler import handler
        from matcarv_aiops.settings import get_settings

        for dag in stack.api("GET", "/dags?limit=100")[1]["dags"]:
            stack.unpause(dag["dag_id"])
        ddb = stack.aws_client("dynamodb")
        for kind in args.kinds.split(","):
            for index in range(args.per_kind):
                event, suffix = problems(kind, index)
                sent = time.time()
                outcome = handler(event, None)
                trigger_seconds = time.time() - sent
                (match,) = [m for m in outcome["matches"] if m["remediation"] == kind]
                run = stack.wait_for_run(match["dag_id"], match["dag_run_id"], timeout=300)
                audit = next(
                    i
                    for i in ddb.scan(TableName=get_settings().platform.audit_table)["Items"]
                    if i["targetResource"]["S"].endswith(suffix) and i["runbook"]["S"] == match["dag_id"]
                )
                tis = stack.api(
                    "GET", f"/dags/{match['dag_id']}/dagRuns/{match['dag_run_id']}/taskInstances"
                )[1]
                tis = {t["task_id"]: t for t in tis["task_instances"]}
                started = [ts(t["start_date"]) for t in tis.values() if t.get("start_date")]
                overhead = sum(
                    ts(t["start_date"]) - ts(t["scheduled_when"] or t["queued_when"])
                    for t in tis.values()
                    if t.get("start_date") and (t.get("scheduled_when") or t.get("queued_when"))
                )
                execute = tis["execute"]
                rows.append(
                    {
                        "kind": kind,
                        "outcome": audit["outcome"]["S"],
                        "total": ts(audit["timestamp"]["S"]) - sent,
                        "trigger": trigger_seconds,
                        "queueing": min(started) - ts(run["queued_at"] or run["start_date"]),
                        "task_start_overhead": overhead,
                        "action": (ts(execute["end_date"]) - ts(execute["start_date"]))
                        if execute.get("end_date")
                        else 0.0,
                    }
                )
                print(f"{kind} #{index}: {rows[-1]['outcome']} in {rows[-1]['total']:.1f} s", flush=True)
    print(
        f"\n{'kind':22} {'n':>3} {'p50':>6} {'p95':>6} | medians: {'trigger':>8} {'queueing':>9} "
        f"{'task start':>10} {'action':>7}"
    )
    for kind in args.kinds.split(","):
        mine = [r for r in rows if r["kind"] == kind]
        totals = [r["total"] for r in mine]
        med = {
            key: statistics.median(r[key] for r in mine)
            for key in ("trigger", "queueing", "task_start_overhead", "action")
        }
        print(
            f"{kind:22} {len(mine):3d} {pct(totals, 0.5):6.1f} {pct(totals, 0.95):6.1f} | "
            f"{med['trigger']:17.2f} {med['queueing']:9.2f} {med['task_start_overhead']:10.2f} "
            f"{med['action']:7.2f}"
        )
    bad = [r for r in rows if r["outcome"] != "SUCCESS"]
    print(f"{len(rows)} runs, {len(bad)} not SUCCESS")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
