"""Run the anomaly detectors on the labelled NAB CloudWatch corpus and print their NAB scores.

    .venv/bin/python bench/nab/run.py                   # the model and both baselines, standard profile
    .venv/bin/python bench/nab/run.py --per-file        # plus each file's score at the chosen threshold
    .venv/bin/python bench/nab/run.py --data DIR        # another copy of the corpus

Each detector scores every file causally from an empty state, one threshold is optimised over the
whole corpus (as NAB does), and the score is normalised so the null detector is 0 and perfect is 100.
TP and FN count windows detected and missed; FP counts detections outside every window.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from bench.nab.nab_score import PROFILES, score_detector  # noqa: E402
from matcarv_aiops.anomaly import DETECTORS, make_detector  # noqa: E402

DEFAULT_DETECTORS = ("matcarv", "windowed_gaussian", "rolling_median_mad")


def default_data_dir() -> Path:
    for candidate in (REPO.parent / "shared/data/nab", Path("/work/shared/data/nab")):
        if (candidate / "combined_windows.json").exists():
            return candidate
    return REPO.parent / "shared/data/nab"


def load_corpus(data_dir: Path, categories=None) -> tuple[dict, dict]:
    """(corpus, values): corpus[name] = (timestamps, windows), values[name] = the series.

    ``categories``: the folders to load (e.g. ``("realAWSCloudwatch",)``); None: every file listed.
    """
    windows = json.loads((data_dir / "combined_windows.json").read_text())
    corpus, values = {}, {}
    for name in sorted(windows):
        if categories is not None and name.split("/", 1)[0] not in categories:
            continue
        with open(data_dir / name, newline="") as handle:
            rows = list(csv.DictReader(handle))
        timestamps = [row["timestamp"] for row in rows]
        # The labels carry microseconds the data files do not.
        file_windows = [(start.split(".")[0], end.split(".")[0]) for start, end in windows[name]]
        corpus[name] = (timestamps, file_windows)
        values[name] = [float(row["value"]) for row in rows]
    return corpus, values


def evaluate(
    detector_name: str, corpus: dict, values: dict, profile: str = "standard", params: dict | None = None
):
    detector = make_detector(detector_name, **(params or {}))
    started = time.perf_counter()
    scores = {name: detector.score_series(series)[0] for name, series in values.items()}
    elapsed = time.perf_counter() - started
    return score_detector(detector_name, corpus, scores, profile), elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=None, help="the NAB corpus folder (combined_windows.json)"
    )
    parser.add_argument(
        "--detector", action="append", choices=sorted(DETECTORS), help="repeatable; default: all"
    )
    parser.add_argument("--profile", default="standard", choices=sorted(PROFILES))
    parser.add_argument(
        "--params", type=json.loads, default=None, help="JSON keyword arguments for the detector"
    )
    parser.add_argument("--per-file", action="store_true")
    parser.add_argument("--category", action="append", help="repeatable; default: realAWSCloudwatch")
    args = parser.parse_args(argv)

    corpus, values = load_corpus(args.data or default_data_dir(), args.category or ["realAWSCloudwatch"])
    print(
        f"{len(corpus)} files, {sum(len(w) for _, w in corpus.values())} windows, "
        f"{sum(len(v) for v in values.values())} points; profile {args.profile}\n"
    )
    print(f"| detector | NAB {args.profile} score | TP | FP | FN | threshold | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    reports = []
    for name in args.detector or DEFAULT_DETECTORS:
        report, elapsed = evaluate(name, corpus, values, args.profile, args.params)
        reports.append(report)
        print(
            f"| {name} | {report.score:.1f} | {report.tp} | {report.fp} | {report.fn} "
            f"| {report.threshold:.6g} | {elapsed:.1f} |"
        )
    if args.per_file:
        for report in reports:
            print(f"\n{report.detector} per file (raw score, TP/FP/FN):")
            for name, result in report.per_file.items():
                counts = f"{result.tp}/{result.fp}/{result.fn}"
                print(f"  {name.split('/')[-1]:45s} {result.score:+7.3f}  {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
