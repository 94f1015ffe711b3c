"""A burst of remediations on the local stack (moto_server + airflow standalone), run by hand:

    .venv/bin/python bench/burst.py [--events 20] [--single 3] [--phases single,handler,rest]
        [--json FILE] [--profile DIR] [--startup-timeout 900]

Three phases on one stack, over five automatic remediation kinds (SQS DLQ drain, ALB 5xx CloudFront
invalidation, EC2 stop/start through its SSM document, Route 53 failover, DynamoDB read throttling):
- ``single``: ``--single`` events per kind, one at a time: the latency of one remediation alone.
- ``handler``: ``--events`` events (round robin over the kinds, each its own problem) sent through the
  trigger handler (the Lambda's code) all at once, each call in its own thread, as concurrent Lambda
  invocations would.
- ``rest``: the same number of problems, triggered by hand at once through the REST API
  (``POST /dags/remediate_<kind>/dagRuns`` with ``conf.target``), each its own thread.

During each burst a reader thread reads the runs' states over the REST API in a loop, as the UI or
``make demo`` does. Reported per burst: accepted triggers and the slowest trigger call; the slowest
status read; p50/p95/max from event (or trigger) to audit record; and CPU seconds per run, by process
(from /proc: utime+stime of each process, plus the children it reaped, before and after), with the task
instances' wall time split into the hand-over from the previous task, scheduled -> queued, the wait for a
worker slot, and running, and the seconds in which tasks were queued and none ran.
Prints the machine's load average beside each table: the numbers are only as quiet as the machine. Each
single-event row has the CPU seconds per run by process too. ``--profile DIR``: the task processes and
their supervisors write cProfiles there (local/preload), summed per task at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from local import scenarios  # noqa: E402
from local.stack import LocalStack, StackError, _http, local_stack, use_stack_environment  # noqa: E402
from tests.events import alarm_event  # noqa: E402

KINDS = (
    "sqs_dlq_depth_high",
    "alb_5xx_spike",
    "ec2_status_check_failed",
    "route53_health_check_failed",
    "dynamodb_read_throttles",
)
ACCOUNT = "123456789012"  # moto's
REGION = scenarios.REGION
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Problem:
    kind: str
    event: dict
    target: str  # the ARN a manual trigger names
    suffix: str  # the end of the audit record's targetResource
    sent: float = 0.0
    call_seconds: float = 0.0
    accepted: bool = False
    dag_id: str = ""
    run_id: str = ""
    detail: str = ""
    audit: dict = field(default_factory=dict)


def throttled_table(name: str):
    """A provisioned DynamoDB table throttling reads (no auto scaling yet)."""
    import boto3

    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": 5},
    )
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="AWS/DynamoDB",
        MetricData=[
            {
                "MetricName": "ReadThrottleEvents",
                "Value": 42,
                "Timestamp": datetime.now(UTC) - timedelta(seconds=30),
                "Dimensions": [{"Name": "TableName", "Value": name}],
            }
        ],
    )


def make_problem(kind: str, tag: str) -> Problem:
    """One real problem of ``kind`` in the moto server, with its alarm event and its ARN."""
    if kind == "sqs_dlq_depth_high":
        name = f"{tag}-dlq"
        scenarios.dead_letter_queue(101, name=name)
        alarm = ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": name})
        target, suffix = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}", f":{name}"
    elif kind == "alb_5xx_spike":
        lb, _, _ = scenarios.alb_with_5xx(name=tag)
        suffix = scenarios.lb_dimension(lb)
        alarm = ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", {"LoadBalancer": suffix})
        target = lb["LoadBalancerArn"]
    elif kind == "ec2_status_check_failed":
        _, instance = scenarios.failing_instance(tags={"Name": tag})
        alarm = ("AWS/EC2", "StatusCheckFailed", {"InstanceId": instance})
        target, suffix = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance}", f"instance/{instance}"
    elif kind == "route53_health_check_failed":
        _, _, check = scenarios.failing_over_dns(f"api.{tag}.example.com.")
        alarm = ("AWS/Route53", "HealthCheckStatus", {"HealthCheckId": check})
        target, suffix = f"arn:aws:route53:::healthcheck/{check}", f"healthcheck/{check}"
    elif kind == "dynamodb_read_throttles":
        throttled_table(tag)
        alarm = ("AWS/DynamoDB", "ReadThrottleEvents", {"TableName": tag})
        target, suffix = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{tag}", f"table/{tag}"
    else:
        raise ValueError(kind)
    return Problem(kind, alarm_event(*alarm), target, suffix)


# ----- CPU from /proc -----
def _proc_table() -> dict[int, tuple[int, str, float, float]]:
    """pid -> (ppid, cmdline, own cpu seconds, cpu seconds of reaped children)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            own = (int(fields[11]) + int(fields[12])) / CLK_TCK
            reaped = (int(fields[13]) + int(fields[14])) / CLK_TCK
            table[int(stat.parent.name)] = (int(fields[1]), cmd, own, reaped)
    return table


def _role(cmd: str) -> str:
    for needle, role in (
        ("scheduler", "scheduler"),
        ("api-server", "api-server"),
        ("api_server", "api-server"),
        ("dag-processor", "dag-processor"),
        ("dag_processor", "dag-processor"),
        ("triggerer", "triggerer"),
        ("moto_server", "moto"),
        ("postgres", "postgres"),
    ):
        if needle in cmd:
            return role
    return "other"


def cpu_by_role(stack: LocalStack) -> dict[str, float]:
    """CPU seconds so far of every process of the stack, by role. A process below the scheduler that is
    not the scheduler (LocalExecutor workers, task supervisors, task processes) counts as 'task
    processes', with the children they reaped; a reaped child of any other process, and a live one its
    command line does not name (the API server's workers), counts for its parent."""
    table = _proc_table()
    roots = {p.popen.pid for p in stack.processes}
    children: dict[int, list[int]] = {}
    for pid, (ppid, *_rest) in table.items():
        children.setdefault(ppid, []).append(pid)
    totals: dict[str, float] = {}

    def walk(pid: int, inherited: str | None, parent: str) -> None:
        ppid, cmd, own, reaped = table[pid]
        role = inherited or _role(cmd)
        if role == "other":  # a process its command line does not name (the API server's workers)
            role = parent
        totals[role] = totals.get(role, 0.0) + own + reaped
        below = "task processes" if role in ("scheduler", "task processes") else inherited
        for child in children.get(pid, []):
            walk(child, below, role)

    for root in roots:
        if root in table:
            walk(root, None, "other")
    for pid in stack.database.pids() if stack.database else ():
        if pid in table:
            totals["postgres"] = totals.get("postgres", 0.0) + table[pid][2] + table[pid][3]
    return totals


# ----- the burst -----
class StatusReader(threading.Thread):
    """Reads the runs' states over and over until stopped; keeps the slowest read."""

    def __init__(self, stack: LocalStack, problems: list[Problem]):
        super().__init__(daemon=True)
        self.stack, self.problems = stack, problems
        self.stop = threading.Event()
        self.reads: list[float] = []
        self.started_at: list[float] = []  # when each read began (time.monotonic())
        self.failures = 0
        self.token = _token(stack)

    def run(self) -> None:
        while not self.stop.is_set():
            started = [p for p in self.problems if p.run_id]
            paths = [f"/dags/{p.dag_id}/dagRuns/{p.run_id}" for p in started] or ["/dags/~/dagRuns?limit=20"]
            for path in paths:
                if self.stop.is_set():
                    break
                begin = time.monotonic()
                try:
                    status, _ = _http(
                        "GET",
                        f"{self.stack.airflow_url}/api/v2{path}",
                        None,
                        {"Authorization": f"Bearer {self.token}"},
                        timeout=60,
                    )
                except (TimeoutError, OSError):
                    status = 0
                self.reads.append(time.monotonic() - begin)
                self.started_at.append(begin)
                if status != 200:
                    self.failures += 1
                time.sleep(0.2)


def _token(stack: LocalStack) -> str:
    """A JWT for the admin, waiting as long as it takes (a swamped API server may not answer at once)."""
    for _ in range(30):
        try:
            return stack.token()
        except (TimeoutError, OSError, StackError):
            time.sleep(2)
    raise StackError("no token from the API server within 30 tries")


def trigger_by_handler(problem: Problem) -> None:
    from matcarv_aiops.ingress.handler import handler

    problem.sent = time.time()
    begin = time.monotonic()
    try:
        outcome = handler(problem.event, None)
    except Exception as exc:  # noqa: BLE001 - a failed invocation is a result here
        problem.detail = repr(exc)[:200]
        outcome = {"matches": []}
    problem.call_seconds = time.monotonic() - begin
    for match in outcome.get("matches", []):
        if match["remediation"] == problem.kind:
            problem.dag_id, problem.run_id = match["dag_id"], match["dag_run_id"]
            problem.accepted = match.get("status") in ("created", "duplicate")
            problem.detail = problem.detail or match.get("status", "")


def trigger_by_rest(stack: LocalStack, token: str, index: int, problem: Problem) -> None:
    dag_id, run_id = f"remediate_{problem.kind}", f"manual_burst_{index}_{int(time.time())}"
    problem.sent = time.time()
    begin = time.monotonic()
    try:
        status, body = _http(
            "POST",
            f"{stack.airflow_url}/api/v2/dags/{dag_id}/dagRuns",
            {"dag_run_id": run_id, "logical_date": None, "conf": {"target": problem.target}},
            {"Authorization": f"Bearer {token}"},
            timeout=60,
        )
    except (TimeoutError, OSError) as exc:
        status, body = 0, repr(exc)
    problem.call_seconds = time.monotonic() - begin
    problem.accepted = status in (200, 201)
    problem.detail = f"{status}" if problem.accepted else f"{status} {str(body)[:200]}"
    if problem.accepted:
        problem.dag_id, problem.run_id = dag_id, run_id


def ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def wait_for_audits(stack: LocalStack, problems: list[Problem], timeout: float) -> None:
    from matcarv_aiops.settings import get_settings

    ddb = stack.aws_client("dynamodb")
    table = get_settings().platform.audit_table
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(p.accepted and not p.audit for p in problems):
        items = []
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            items += page["Items"]
        for problem in problems:
            if problem.accepted and not problem.audit:
                for item in items:
                    if (
                        item["targetResource"]["S"].endswith(problem.suffix)
                        and item["runbook"]["S"] == problem.dag_id
                    ):
                        problem.audit = {k: v.get("S", v.get("N")) for k, v in item.items()}
        time.sleep(0.5)


# A task instance's times, by the REST API's field names.
FIELDS = {"scheduled": "scheduled_when", "queued": "queued_when", "start": "start_date", "end": "end_date"}


def task_times(stack: LocalStack, problems: list[Problem]) -> dict[str, float]:
    """Where the runs' task instances spent their wall time, from the metadata database (through the REST
    API), in seconds per run: ``handover`` (the previous task's end, or the trigger, to this one scheduled:
    the scheduler noticing), ``to_queue`` (scheduled -> queued), ``waiting_for_slot`` (queued -> started:
    a free worker slot), ``running`` (started -> ended); and, over the burst, ``idle_while_queued_s``: the
    seconds in which tasks were queued and none was running (worker slots held by tasks that had ended)."""
    parts = dict.fromkeys(("handover", "to_queue", "waiting_for_slot", "running"), 0.0)
    running_spans, queued_spans = [], []
    runs = 0
    for p in problems:
        if not p.run_id:
            continue
        runs += 1
        _, body = stack.api("GET", f"/dags/{p.dag_id}/dagRuns/{p.run_id}/taskInstances")
        instances = [
            {k: ts(ti.get(f)) for k, f in FIELDS.items()} for ti in (body or {}).get("task_instances", [])
        ]
        previous_end = p.sent
        for ti in sorted((t for t in instances if t["start"]), key=lambda t: t["start"] or 0.0):
            start, scheduled, queued, end = ti["start"] or 0.0, ti["scheduled"], ti["queued"], ti["end"]
            ready = scheduled or queued
            if ready:
                parts["handover"] += max(0.0, ready - previous_end)
            if scheduled and queued:
                parts["to_queue"] += max(0.0, queued - scheduled)
            if queued:
                parts["waiting_for_slot"] += max(0.0, start - queued)
                queued_spans.append((queued, start))
            if end:
                parts["running"] += end - start
                running_spans.append((start, end))
                previous_end = end
    per_run = {k: v / max(1, runs) for k, v in parts.items()}
    per_run["idle_while_queued_s"] = _idle_while_queued(running_spans, queued_spans)
    return per_run


def _idle_while_queued(running: list[tuple[float, float]], queued: list[tuple[float, float]]) -> float:
    """Seconds in which at least one task was queued and none was running."""
    edges = sorted(
        [(t, "run", +1) for t, _ in running]
        + [(t, "run", -1) for _, t in running]
        + [(t, "queue", +1) for t, _ in queued]
        + [(t, "queue", -1) for _, t in queued]
    )
    count = {"run": 0, "queue": 0}
    idle, last = 0.0, None
    for moment, kind, step in edges:
        if last is not None and count["queue"] > 0 and count["run"] == 0:
            idle += moment - last
        count[kind] += step
        last = moment
    return idle


def burst(stack: LocalStack, name: str, problems: list[Problem], fire, timeout: float) -> dict[str, Any]:
    load = os.getloadavg()
    reader = StatusReader(stack, problems)
    cpu_before = cpu_by_role(stack)
    reader.start()
    began, began_monotonic = time.time(), time.monotonic()
    with ThreadPoolExecutor(max_workers=len(problems)) as pool:
        list(pool.map(fire, range(len(problems)), problems))
    wait_for_audits(stack, problems, timeout)
    # A run goes on after its audit record (the audit task's end, the run's final state): that is still
    # this burst's work, counted in its CPU, and the next phase starts only once it is done.
    for problem in problems:
        if problem.accepted and problem.run_id:
            stack.wait_for_run(problem.dag_id, problem.run_id, timeout=timeout)
    reader.stop.set()
    reader.join()
    cpu_after = cpu_by_role(stack)
    elapsed = time.time() - began
    latencies = [ts(p.audit["timestamp"]) - p.sent for p in problems if p.audit]
    task_wall = task_times(stack, problems)
    runs = max(1, sum(p.accepted for p in problems))
    slowest = max(range(len(reader.reads)), key=reader.reads.__getitem__, default=None)
    slowest_read_at = None if slowest is None else round(reader.started_at[slowest] - began_monotonic, 1)
    return {
        "burst": name,
        "events": len(problems),
        "accepted": sum(p.accepted for p in problems),
        "audited": len(latencies),
        "outcomes": sorted({p.audit.get("outcome", "-") for p in problems}),
        "slowest_trigger_s": max(p.call_seconds for p in problems),
        "status_reads": len(reader.reads),
        "status_read_failures": reader.failures,
        "slowest_status_read_s": max(reader.reads, default=float("nan")),
        "status_read_p95_s": pct(reader.reads, 0.95),
        # when the slowest read began, in seconds after the trigger calls began (near 0: beside them)
        "slowest_status_read_at_s": slowest_read_at,
        "p50_s": pct(latencies, 0.5),
        "p95_s": pct(latencies, 0.95),
        "max_s": max(latencies, default=float("nan")),
        "wall_s": elapsed,
        "cpu_s_per_run": _cpu_per_run(cpu_before, cpu_after, runs),
        "task_wall_s_per_run": {k: round(v, 2) for k, v in task_wall.items()},
        "load_before": [round(x, 2) for x in load],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "not_accepted": [p.detail for p in problems if not p.accepted][:5],
    }


def _cpu_per_run(before: dict[str, float], after: dict[str, float], runs: int) -> dict[str, float]:
    """CPU seconds by role between two cpu_by_role readings, per run; the roles that spent any."""
    cpu = {role: (after[role] - before.get(role, 0.0)) / max(1, runs) for role in sorted(after)}
    return {role: round(seconds, 2) for role, seconds in cpu.items() if seconds > 0.005}


def single(stack: LocalStack, per_kind: int, timeout: float) -> list[dict[str, Any]]:
    rows = []
    for kind in KINDS:
        latencies, load, cpu_before = [], os.getloadavg(), cpu_by_role(stack)
        for index in range(per_kind):
            problem = make_problem(kind, f"one{index}-{kind[:6].replace('_', '')}")
            trigger_by_handler(problem)
            wait_for_audits(stack, [problem], timeout)
            if problem.audit:
                latencies.append(ts(problem.audit["timestamp"]) - problem.sent)
        rows.append(
            {
                "kind": kind,
                "n": len(latencies),
                "p50_s": pct(latencies, 0.5),
                "max_s": max(latencies, default=float("nan")),
                "load": [round(x, 2) for x in load],
                "cpu_s_per_run": _cpu_per_run(cpu_before, cpu_by_role(stack), per_kind),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--single", type=int, default=3, help="events per kind in the single phase")
    parser.add_argument("--phases", default="single,handler,rest")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for a burst's audit records"
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=900.0,
        help="seconds Airflow may take to answer (on a loaded machine its API server takes minutes)",
    )
    parser.add_argument("--no-preload", action="store_true", help="start the stack without local/preload")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="directory: each task process writes its cProfile there (local/preload), summed at the end",
    )
    args = parser.parse_args()
    phases = args.phases.split(",")
    results: dict[str, Any] = {"uptime_at_start": os.getloadavg()}
    extra_env = {}
    if args.profile:
        if args.no_preload:
            parser.error("--profile needs the preload (it installs the task processes' profiler)")
        args.profile.mkdir(parents=True, exist_ok=True)
        extra_env["AIOPS_PROFILE_TASKS"] = str(args.profile.resolve())
    with local_stack(
        preload=not args.no_preload, extra_env=extra_env, startup_timeout=args.startup_timeout
    ) as stack:
        use_stack_environment(stack)
        results["metadata_db"] = stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].split(":", 1)[0]
        results["preload"] = not args.no_preload
        stack.unpause(*[f"remediate_{kind}" for kind in KINDS])
        if "single" in phases:
            results["single"] = single(stack, args.single, args.timeout)
        token = _token(stack)
        for name in ("handler", "rest"):
            if name not in phases:
                continue
            problems = [
                make_problem(
                    KINDS[i % len(KINDS)], f"{name[0]}{i}-{KINDS[i % len(KINDS)][:6].replace('_', '')}"
                )
                for i in range(args.events)
            ]

            def fire(index, problem, name=name):
                if name == "handler":
                    trigger_by_handler(problem)
                else:
                    trigger_by_rest(stack, token, index, problem)

            results[name] = burst(stack, name, problems, fire, args.timeout)
            print(json.dumps(results[name]), flush=True)
    print_tables(results)
    if args.profile:
        results["task_profile"] = summarise_profiles(args.profile)
        print_profile(results["task_profile"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    bursts = [results[n] for n in ("handler", "rest") if n in results]
    ok = all(b["accepted"] == b["events"] == b["audited"] for b in bursts)
    return 0 if ok else 1


def summarise_profiles(directory: Path, top: int = 25) -> dict[str, Any]:
    """The profiles local/preload wrote (AIOPS_PROFILE_TASKS), per role (``task``: the forked task process;
    ``supervisor``: its LocalExecutor worker's supervision of it): CPU seconds per task id, the requests a
    task process sent its supervisor, the modules every one imported itself, the costliest functions."""
    import pstats

    out: dict[str, Any] = {}
    for role in ("task", "supervisor"):
        summaries = [json.loads(path.read_text()) for path in sorted(directory.glob(f"{role}-*.json"))]
        if not summaries:
            continue
        by_task: dict[str, list[float]] = {}
        imported: dict[str, int] = {}
        requests: dict[str, dict[str, int]] = {}
        for summary in summaries:
            task = summary.get("task_id", "?")
            by_task.setdefault(task, []).append(summary["cpu_s"])
            for module in summary["imported"]:
                imported[module] = imported.get(module, 0) + 1
            for kind, count in summary["requests"].items():
                requests.setdefault(task, {})[kind] = requests.get(task, {}).get(kind, 0) + count
        stats = pstats.Stats(*(str(path) for path in sorted(directory.glob(f"{role}-*.prof"))))
        functions = [
            (f"{Path(file).name}:{line}({name})", own, cumulative)
            for (file, line, name), (_, _, own, cumulative, _) in stats.stats.items()  # type: ignore[attr-defined]
        ]
        count = len(summaries)
        out[role] = {
            "processes": count,
            "cpu_s_per_task": {task: round(statistics.mean(cpu), 3) for task, cpu in sorted(by_task.items())},
            "requests_per_task": {
                task: {kind: round(n / len(by_task[task]), 1) for kind, n in sorted(counts.items())}
                for task, counts in sorted(requests.items())
            },
            # imported by every one: what the preload could import once for all of them
            "modules_imported_by_each": sorted(m for m, n in imported.items() if n == count),
            "top_cumulative_s_each": [
                (where, round(cumulative / count, 4), round(own / count, 4))
                for where, own, cumulative in sorted(functions, key=lambda f: -f[2])[:top]
            ],
        }
    return out


def print_profile(profile: dict[str, Any]) -> None:
    for role, found in profile.items():
        print(f"\n{role}: {found['processes']} profiled; CPU s each, by task:")
        for task, cpu in found["cpu_s_per_task"].items():
            requests = found["requests_per_task"].get(task, {})
            print(f"  {task:24} {cpu:6.3f}  " + ", ".join(f"{kind} {n}" for kind, n in requests.items()))
        print(f"modules each imported itself: {len(found['modules_imported_by_each'])}")
        print("cumulative / own s each:")
        for where, cumulative, own in found["top_cumulative_s_each"]:
            print(f"  {cumulative:7.4f} {own:7.4f}  {where}")


def print_tables(results: dict[str, Any]) -> None:
    print(f"\nmetadata DB: {results.get('metadata_db')}, preload: {results.get('preload')}")
    if "single" in results:
        print(f"\n{'single event, kind':30} {'n':>3} {'p50 s':>7} {'max s':>7}  load (1/5/15 min)")
        for row in results["single"]:
            cpu = row.get("cpu_s_per_run", {})
            print(
                f"{row['kind']:30} {row['n']:3d} {row['p50_s']:7.1f} {row['max_s']:7.1f}  {row['load']}  "
                f"CPU s per run {statistics.fsum(cpu.values()):.1f}: "
                + ", ".join(f"{k} {v}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
            )
    bursts = [results[n] for n in ("handler", "rest") if n in results]
    if bursts:
        print(
            f"\n{'burst':8} {'accepted':>9} {'slowest trigger s':>18} {'slowest status s':>17} "
            f"{'p50 s':>6} {'p95 s':>6} {'max s':>6}  load before -> after"
        )
        for b in bursts:
            print(
                f"{b['burst']:8} {b['accepted']:>4}/{b['events']:<4} {b['slowest_trigger_s']:18.2f} "
                f"{b['slowest_status_read_s']:17.2f} {b['p50_s']:6.1f} {b['p95_s']:6.1f} {b['max_s']:6.1f}  "
                f"{b['load_before']} -> {b['load_after']}"
            )
        for b in bursts:
            cpu = b["cpu_s_per_run"]
            print(
                f"{b['burst']:8} CPU s per run: {statistics.fsum(cpu.values()):.1f} = "
                + ", ".join(f"{k} {v}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
            )
            wall = b["task_wall_s_per_run"]
            print(
                f"{b['burst']:8} task instances, wall s per run: handover {wall['handover']:.1f}, "
                f"scheduled -> queued {wall['to_queue']:.1f}, waiting for a worker slot "
                f"{wall['waiting_for_slot']:.1f}, running {wall['running']:.1f}; queued with none running "
                f"for {wall['idle_while_queued_s']:.1f} s of the burst"
            )


if __name__ == "__main__":
    sys.exit(main())
