"""Event ingress benchmark, run by hand: ``.venv/bin/python bench/ingress_bench.py``.

Measures
1. the trigger Lambda handler module's import time (cold start) in fresh interpreters, with no Airflow
   and no pydantic imported (min, median and p90 over the runs), beside what pydantic and one model cost
   (``pydantic_floor``: the envelope was validated with pydantic before pydantic-core took that over),
   and the first event's routing (catalogue load):
   from this repository's environment (``handler_import``: no compiled catalogue, so the first route
   loads the YAML catalogue), and from the Lambda package as it ships (``lambda_package_*``: built by
   ``aiops_infra.bundle.build_lambda_package`` into a temporary directory, run with ``python -I -S`` so
   nothing but the package and the standard library is importable; its catalogue is compiled JSON and
   its modules carry bytecode);
2. routing time per event, over the hand-written AWS samples and one event per catalogue entry;
3. a burst of 1,000 events of which 900 are duplicates (100 distinct, each delivered 10 times, shuffled),
   through the handler, against an Airflow API that throttles like MWAA (10 requests/s, 429 above):
   how many runs are created (goal: exactly 100), how many trigger calls reach the API, and that no event
   is lost. An event whose trigger still fails is re-delivered, as EventBridge does.
   - "warm": one container handles the burst (its process memory skips duplicates it already confirmed);
   - "cold": every delivery on a fresh container (no memory): duplicates are settled by Airflow's 409.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _subprocess_ms(code: str, *flags: str, python: str = sys.executable) -> tuple[float, float]:
    """(wall, CPU) milliseconds printed by ``code``; CPU time is what a busy shared machine distorts least."""
    out = subprocess.run([python, *flags, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall) * 1000, float(cpu) * 1000


def measure_import(runs: int) -> dict:
    import tempfile

    sys.path.insert(0, str(REPO / "infra"))
    from aiops_infra.bundle import build_lambda_package

    with tempfile.TemporaryDirectory(prefix="aiops-lambda-") as tmp:
        return _measure_import(runs, build_lambda_package(Path(tmp) / "code"))


def _measure_import(runs: int, package: Path) -> dict:
    event = REPO / "tests" / "ingress" / "events" / "cloudwatch_alarm_ec2_status_check.json"
    clock = "import time; w, c = time.perf_counter(), time.process_time()\n"
    done = "print(time.perf_counter() - w, time.process_time() - c)\n"
    route = f"from matcarv_aiops.ingress.routing import route\nroute(json.load(open({str(event)!r})))\n"
    in_package = f"import sys; sys.path.insert(0, {str(package)!r})\n"
    no_extras = (
        "assert not {m.split('.')[0] for m in sys.modules} & {'airflow', 'yaml', 'boto3', 'pydantic'}\n"
    )
    codes = {
        "handler_import": (
            clock
            + "import sys, matcarv_aiops.ingress.handler\n"
            + done
            + "assert not {m.split('.')[0] for m in sys.modules} & {'airflow', 'pydantic'}\n",
            (),
        ),
        # For comparison: pydantic and one model, what validating the envelope with pydantic cost (the
        # handler validates with pydantic-core alone, and imports no pydantic).
        "pydantic_floor": (
            clock + "from pydantic import BaseModel\nclass M(BaseModel):\n    x: int\n" + done,
            (),
        ),
        "import_plus_first_route": (
            clock + "import json, matcarv_aiops.ingress.handler\n" + route + done,
            (),
        ),
        "lambda_package_import": (
            in_package + clock + "import matcarv_aiops.ingress.handler\n" + done + no_extras,
            ("-I", "-S"),
        ),
        "lambda_package_import_plus_first_route": (
            in_package + clock + "import json, matcarv_aiops.ingress.handler\n" + route + done + no_extras,
            ("-I", "-S"),
        ),
    }
    result = {}
    sys.path.insert(0, str(REPO / "infra"))
    from aiops_infra.bundle import find_lambda_python

    # The package is built for the Lambda's CPython 3.12: run it with one (skipped if there is none).
    lambda_python = find_lambda_python()
    for name, (code, flags) in codes.items():
        if name.startswith("lambda_package") and lambda_python is None:
            result[f"{name}_skipped"] = "no CPython 3.12 on this machine (AIOPS_LAMBDA_PYTHON)"
            continue
        python = lambda_python if name.startswith("lambda_package") else sys.executable
        samples = [_subprocess_ms(code, *flags, python=python) for _ in range(runs)]
        for index, kind in ((0, "wall"), (1, "cpu")):
            values = [sample[index] for sample in samples]
            result[f"{name}_{kind}_ms"] = {
                "min": round(min(values), 1),
                "median": round(statistics.median(values), 1),
                "p90": round(statistics.quantiles(values, n=10, method="inclusive")[-1], 1),
            }
    return result


def measure_routing(repeat: int) -> dict:
    from matcarv_aiops.catalogue import catalogue
    from matcarv_aiops.ingress.routing import InvalidEvent, route
    from tests.ingress import samples

    events = [samples.load(name) for name in samples.sample_names()]
    events += [samples.event_for(entry) for entry in catalogue().values()]
    catalogue()  # loaded once per container, before the first event
    timings = []
    for _ in range(repeat):
        for event in events:
            start = time.perf_counter()
            with contextlib.suppress(InvalidEvent):  # invalid samples are timed too
                route(event)
            timings.append(time.perf_counter() - start)
    timings.sort()
    return {
        "events": len(events),
        "catalogue_entries": len(catalogue()),
        "routes": len(timings),
        "mean_us": round(statistics.fmean(timings) * 1e6, 1),
        "p50_us": round(timings[len(timings) // 2] * 1e6, 1),
        "p99_us": round(timings[int(len(timings) * 0.99)] * 1e6, 1),
    }


class _Context:
    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


def measure_burst(
    mode: str, *, distinct: int, copies: int, rate: float, workers: int, lambda_seconds: float
) -> dict:
    import logging
    import os

    from matcarv_aiops.ingress import handler as lambda_module
    from matcarv_aiops.ingress.routing import route
    from matcarv_aiops.ingress.trigger_client import TriggerError, client_from_settings
    from matcarv_aiops.settings import reload_settings
    from tests.ingress import samples
    from tests.ingress.airflow_api import FakeAirflowApi

    bases = [
        samples.load(name)
        for name in (
            "cloudwatch_alarm_ec2_status_check.json",
            "cloudwatch_alarm_sqs_dlq_depth.json",
            "cloudtrail_s3_delete_public_access_block.json",
        )
    ]
    events = []
    for number in range(distinct):
        event = dict(bases[number % len(bases)], id=f"burst-{number:04d}-0000-4000-8000-000000000000")
        events += [event] * copies
    random.Random(7).shuffle(events)
    logging.getLogger("matcarv_aiops.ingress").setLevel(logging.ERROR)  # else every retry is logged

    with FakeAirflowApi(password="pw", rate_per_second=rate) as api:
        os.environ.update(
            {
                "AIOPS_TRIGGER_BACKEND": "local",
                "AIOPS_AIRFLOW_BASE_URL": api.url,
                "AIOPS_AIRFLOW_API_USERNAME": "admin",
                "AIOPS_AIRFLOW_API_PASSWORD": "pw",
            }
        )
        reload_settings()
        shared = client_from_settings()
        redeliveries = 0

        def deliver(event: dict) -> None:
            nonlocal redeliveries
            while True:
                # warm: the container's client (and its memory) is reused; cold: a fresh one each time.
                lambda_module._client = shared if mode == "warm" else client_from_settings()
                try:
                    lambda_module.handler(event, _Context(lambda_seconds))
                    return
                except TriggerError:
                    redeliveries += 1  # EventBridge retries the event

        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(deliver, events))
        elapsed = time.perf_counter() - start
        wanted = {
            (match.dag_id, match.dag_run_id)
            for event in {e["id"]: e for e in events}.values()
            for match in route(event).matches
        }
        lost = len(wanted - set(api.runs))
        return {
            "mode": mode,
            "events": len(events),
            "distinct": distinct,
            "workers": workers,
            "throttle_per_second": rate,
            "runs_created": api.counts["created"],
            "trigger_calls_answered": api.counts["created"] + api.counts["duplicate"],
            "answered_409": api.counts["duplicate"],
            "throttled_429": api.counts["throttled"],
            "http_posts_total": api.counts["post"],
            "eventbridge_redeliveries": redeliveries,
            "lost": lost,
            "seconds": round(elapsed, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--import-runs", type=int, default=15)
    parser.add_argument("--route-repeat", type=int, default=500)
    parser.add_argument("--workers", type=int, default=10, help="concurrent deliveries in the burst")
    parser.add_argument("--rate", type=float, default=10.0, help="API requests per second before 429")
    parser.add_argument(
        "--skip-cold", action="store_true", help="skip the cold burst (1,000 API calls at --rate)"
    )
    args = parser.parse_args()
    report = {"import": measure_import(args.import_runs), "routing": measure_routing(args.route_repeat)}
    print(json.dumps(report, indent=2), flush=True)
    bursts = ["warm"] + ([] if args.skip_cold else ["cold"])
    for mode in bursts:
        result = measure_burst(
            mode, distinct=100, copies=10, rate=args.rate, workers=args.workers, lambda_seconds=30.0
        )
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
