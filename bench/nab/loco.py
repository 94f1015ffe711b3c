"""Leave-one-category-out (LOCO) evaluation of the anomaly detectors on NAB.

    .venv/bin/python bench/nab/loco.py                        # the model and the previous model
    .venv/bin/python bench/nab/loco.py --detector matcarv     # one detector
    .venv/bin/python bench/nab/loco.py --per-file             # plus each held-out file's result

For each of the three categories with anomalies (realAWSCloudwatch, realKnownCause,
artificialWithAnomaly), "tune on two":

1. every parameter set of the detector's small fixed grid (``GRIDS``) scores every file of the two
   training categories causally from an empty state;
2. for each parameter set, one threshold is chosen to maximise the mean of the two training
   categories' normalised NAB scores (NAB's threshold sweep, with each category weighted so the
   sweep maximises the mean of the category scores rather than their raw sum);
3. the parameter set (and its threshold) with the best training mean is kept.

The held-out category is then scored with that parameter set two ways, both reported:
- ``carried``: at the threshold chosen on the two training categories (what a deployment would do);
- ``NAB-opt``: with NAB's own threshold optimisation on the held-out category (what NAB publishes;
  it sees the held-out labels through the threshold only).

The held-out category never influences the parameters or the carried threshold. Also printed: false
alarms per 1,000 points at the package's ``ALERT_THRESHOLD`` on artificialNoAnomaly (no windows: every
alarm is false) and on each realAWSCloudwatch series outside its windows.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from bench.nab.nab_score import (  # noqa: E402
    NO_DETECTION_THRESHOLD,
    PROFILES,
    CostProfile,
    ScoredRow,
    null_and_perfect,
    probation_length,
    score_at_threshold,
    scores_by_threshold,
    sweep_rows,
)
from bench.nab.run import default_data_dir, load_corpus  # noqa: E402
from matcarv_aiops.anomaly import make_detector  # noqa: E402

CATEGORIES = ("realAWSCloudwatch", "realKnownCause", "artificialWithAnomaly")
QUIET = "artificialNoAnomaly"

# The fixed grids LOCO chooses from. Small on purpose: with three folds, a large grid would fit the
# training categories' noise.
GRIDS: dict[str, dict[str, Sequence]] = {
    # the previous grid's baseline windows and level scales (one scale or both), and whether the gap
    # after an alarm is used at all
    "matcarv": {"window": (144, 288), "shorts": ((6,), (12,), (6, 12)), "min_gap": (0, 48)},
    "week_novelty": {"window": (144, 288), "short": (6, 12)},
    "windowed_gaussian": {"window": (288, 1000)},
    "rolling_median_mad": {"window": (288, 1000)},
}


def grid_params(grid: dict[str, Sequence]) -> list[dict]:
    return [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]


def category_of(name: str) -> str:
    return name.split("/", 1)[0]


@dataclass(frozen=True)
class CategoryRows:
    """A category's scorable rows for one detector output, with its normalisation anchors."""

    rows: list[ScoredRow]
    null: float
    perfect: float

    def normalised(self, raw: float) -> float:
        return 100.0 * (raw - self.null) / (self.perfect - self.null)


def category_rows(corpus: dict, scores: dict, category: str, profile: CostProfile) -> CategoryRows:
    names = [name for name in corpus if category_of(name) == category]
    sub = {name: corpus[name] for name in names}
    rows = [
        row
        for name in names
        for row in sweep_rows(corpus[name][0], scores[name], corpus[name][1], name, profile)
    ]
    null, perfect = null_and_perfect(sub, profile)
    return CategoryRows(rows, null, perfect)


def best_mean_threshold(parts: Sequence[CategoryRows], profile: CostProfile) -> tuple[float, float]:
    """(threshold, mean normalised score): the threshold maximising the mean of the categories'
    normalised scores, swept over every distinct score (NAB's method, one threshold for all).
    Ties go to the highest threshold."""
    curves = []
    for part in parts:
        results = scores_by_threshold(part.rows, profile)  # thresholds descending
        # ascending thresholds for bisect, with the score at each
        thresholds = [r.threshold for r in reversed(results)]
        values = [part.normalised(r.score) for r in reversed(results)]
        curves.append((thresholds, values))
    candidates = sorted({t for thresholds, _ in curves for t in thresholds}, reverse=True)
    best_t, best = NO_DETECTION_THRESHOLD, -float("inf")
    for t in candidates:
        total = 0.0
        for thresholds, values in curves:
            # detecting every row >= t equals detecting at the smallest listed threshold >= t
            i = bisect_left(thresholds, t)
            total += values[i] if i < len(values) else values[-1]
        mean = total / len(curves)
        if mean > best:
            best_t, best = t, mean
    return best_t, best


@dataclass
class Fold:
    held_out: str
    params: dict
    threshold: float
    train_mean: float
    carried: float  # held-out normalised score at the training threshold
    carried_counts: tuple[int, int, int]
    optimised: float  # held-out normalised score with NAB's own threshold on it
    optimised_threshold: float
    optimised_counts: tuple[int, int, int]


def run_loco(
    detector: str,
    corpus: dict,
    values: dict,
    grid: dict[str, Sequence] | None = None,
    profile_name: str = "standard",
    categories: Sequence[str] = CATEGORIES,
) -> list[Fold]:
    profile = PROFILES[profile_name]
    grid = GRIDS.get(detector, {}) if grid is None else grid
    names = [name for name in corpus if category_of(name) in categories]
    per_params = []
    for params in grid_params(grid):
        model = make_detector(detector, **params)
        scores = {name: model.score_series(values[name])[0] for name in names}
        per_params.append((params, {c: category_rows(corpus, scores, c, profile) for c in categories}))
    folds = []
    for held_out in categories:
        training = [c for c in categories if c != held_out]
        chosen = None
        for params, parts in per_params:
            threshold, mean = best_mean_threshold([parts[c] for c in training], profile)
            if chosen is None or mean > chosen[2]:
                chosen = (params, threshold, mean, parts[held_out])
        assert chosen is not None
        params, threshold, mean, test = chosen
        carried = score_at_threshold(test.rows, threshold, profile)
        opt_threshold, opt_score = best_mean_threshold([test], profile)
        optimised = score_at_threshold(test.rows, opt_threshold, profile)
        folds.append(
            Fold(
                held_out,
                params,
                threshold,
                mean,
                test.normalised(carried.score),
                (carried.tp, carried.fp, carried.fn),
                opt_score,
                opt_threshold,
                (optimised.tp, optimised.fp, optimised.fn),
            )
        )
    return folds


def false_alarms(detector: str, corpus: dict, values: dict, threshold: float, params: dict | None = None):
    """Alarms per 1,000 points: on each quiet file (every point after NAB's probation), and on each
    realAWSCloudwatch file outside its windows (after the probation too)."""
    model = make_detector(detector, **(params or {}))
    out: dict[str, tuple[int, int]] = {}
    for name, (timestamps, windows) in corpus.items():
        category = category_of(name)
        if category not in (QUIET, "realAWSCloudwatch"):
            continue
        scores = model.score_series(values[name])[0]
        index = {ts: i for i, ts in enumerate(timestamps)}
        inside: set[int] = set()
        for first, last in windows:
            inside.update(range(index[first], index[last] + 1))
        start = int(probation_length(len(timestamps)))
        points = [i for i in range(start, len(scores)) if i not in inside]
        out[name] = (sum(1 for i in points if scores[i] >= threshold), len(points))
    return out


def main(argv: list[str] | None = None) -> int:
    from matcarv_aiops.anomaly import ALERT_THRESHOLD, DEFAULT_DETECTOR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--detector", action="append", choices=sorted(GRIDS), help="repeatable")
    parser.add_argument("--profile", default="standard", choices=sorted(PROFILES))
    parser.add_argument("--no-false-alarms", action="store_true")
    args = parser.parse_args(argv)
    corpus, values = load_corpus(args.data or default_data_dir())
    detectors = args.detector or [DEFAULT_DETECTOR, "week_novelty"]
    print(f"LOCO, NAB {args.profile} profile; categories {', '.join(CATEGORIES)}\n")
    print(
        "| detector | held out | params (chosen on the other two) | train mean | threshold "
        "| carried | TP/FP/FN | NAB-opt | TP/FP/FN |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for detector in detectors:
        folds = run_loco(detector, corpus, values, profile_name=args.profile)
        for f in folds:
            print(
                f"| {detector} | {f.held_out} | {f.params or 'defaults'} | {f.train_mean:.1f} "
                f"| {f.threshold:.4g} | {f.carried:.1f} | {'/'.join(map(str, f.carried_counts))} "
                f"| {f.optimised:.1f} | {'/'.join(map(str, f.optimised_counts))} |",
                flush=True,
            )
        carried = sum(f.carried for f in folds) / len(folds)
        optimised = sum(f.optimised for f in folds) / len(folds)
        print(f"| {detector} | **mean** | | | | **{carried:.1f}** | | **{optimised:.1f}** | |", flush=True)
    if not args.no_false_alarms:
        print(
            f"\nFalse alarms per 1,000 points at ALERT_THRESHOLD = {ALERT_THRESHOLD} "
            "(after NAB's probation; realAWSCloudwatch: outside its windows)\n"
        )
        print("| detector | artificialNoAnomaly | realAWSCloudwatch outside windows |")
        print("| --- | --- | --- |")
        for detector in detectors:
            if detector != DEFAULT_DETECTOR:
                continue
            counts = false_alarms(detector, corpus, values, ALERT_THRESHOLD)
            cells = []
            for category in (QUIET, "realAWSCloudwatch"):
                alarms = sum(a for n, (a, _) in counts.items() if category_of(n) == category)
                points = sum(p for n, (_, p) in counts.items() if category_of(n) == category)
                cells.append(f"{1000 * alarms / points:.2f} ({alarms} in {points:,} points)")
            print(f"| {detector} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
