"""Throughput of the anomaly model: N series of one day each (288 points at 5 minutes).

    .venv/bin/python bench/anomaly_throughput.py                 # N = 100, 1,000, 5,000
    .venv/bin/python bench/anomaly_throughput.py --sizes 1000 --detector windowed_gaussian

Series are generated and scored one at a time, as the job streams them, so memory must not grow
with N. Two modes:
- ``fresh``: each series from an empty state (a new metric), its state then serialised to JSON;
- ``resume``: each series from a stored week-old state (JSON parsed per series, as loaded from S3),
  which is the 5-minute job's steady state, with the model past its warm-up.
Wall and CPU time (this process's) are measured without tracing: on a shared machine the CPU time is
the steadier figure. Peak memory in a second pass under tracemalloc (the peak of Python allocations
above what was allocated before the loop).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from matcarv_aiops.anomaly import DEFAULT_DETECTOR, DETECTORS, make_detector  # noqa: E402

POINTS_PER_DAY = 288


def synthetic_day(seed: int, day: int = 0) -> list[float]:
    """One day of a CPU-like metric: a daily cycle, noise, and now and then a spike or a shift."""
    rng = random.Random(seed * 1_000 + day)
    level = rng.uniform(5, 60)
    amplitude = rng.uniform(0, level / 3)
    noise = rng.uniform(0.2, 3)
    values = [
        level + amplitude * math.sin(2 * math.pi * i / POINTS_PER_DAY) + rng.gauss(0, noise)
        for i in range(POINTS_PER_DAY)
    ]
    if rng.random() < 0.1:
        values[rng.randrange(POINTS_PER_DAY)] += 10 * noise
    return values


def week_old_state(detector) -> str:
    _, state = detector.score_series(synthetic_day(0, 0))
    for day in range(1, 7):
        _, state = detector.score_series(synthetic_day(0, day), state)
    return json.dumps(state.to_dict())


def run(detector, n: int, stored_state: str | None) -> float:
    """Score n series one at a time; returns the largest score, so the work cannot be skipped."""
    top = 0.0
    for seed in range(1, n + 1):
        state = json.loads(stored_state) if stored_state is not None else None
        scores, state = detector.score_series(synthetic_day(seed, 7), state)
        json.dumps(state.to_dict())  # what the job writes back
        top = max(top, max(scores))
    return top


def measure(detector, n: int, stored_state: str | None) -> tuple[float, float, float]:
    started, cpu_started = time.perf_counter(), time.process_time()
    run(detector, n, stored_state)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    tracemalloc.start()
    baseline, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    run(detector, n, stored_state)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, cpu, (peak - baseline) / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=sorted(DETECTORS))
    parser.add_argument("--mode", choices=("fresh", "resume"), help="only this mode; default: both")
    args = parser.parse_args(argv)

    detector = make_detector(args.detector)
    stored = week_old_state(detector)
    print(f"detector {args.detector}; {POINTS_PER_DAY} points per series; stored state {len(stored)} bytes\n")
    modes = [("fresh", None), ("resume", stored)]
    print("| series | mode | wall s | CPU s | ms per series (wall) | peak traced MiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in args.sizes:
        for mode, state in modes:
            if args.mode and mode != args.mode:
                continue
            elapsed, cpu, peak = measure(detector, n, state)
            print(
                f"| {n:,} | {mode} | {elapsed:.2f} | {cpu:.2f} | {1000 * elapsed / n:.2f} | {peak:.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
