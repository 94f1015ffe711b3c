"""NAB scoring (Lavin & Ahmad, ICMLA 2015), written from the paper and NAB's documented method.

How a detector is scored:

1. Every row gets a *sweep score*: the value a detection at that row would earn.
   - Inside a labelled window, a scaled sigmoid of the row's position in the window: the first row
     earns the full TP weight, the right edge about 0, so earlier detections earn more.
   - Outside every window it costs the FP weight times a scaled sigmoid of how far past the end of
     the previous window it is (a detection just after a window costs little, one far away costs the
     full FP weight; before the first window it costs the full FP weight).
2. The first ``probationary`` rows of each file (15 % of its length, capped at 750) are not scored.
3. For a threshold, rows with ``anomaly_score >= threshold`` are detections. Each window scores the
   best sweep score of its detections (its earliest one, since the sigmoid falls across the window),
   or ``-fn_weight`` if none; every detection outside the windows adds its (negative) sweep score.
4. The threshold is chosen per detector and profile to maximise the summed score over the whole
   corpus (one threshold for all files), by sweeping every distinct anomaly score.
5. The raw score is normalised so the null detector scores 0 and a perfect one 100.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CostProfile:
    tp_weight: float
    fp_weight: float
    fn_weight: float


# NAB's application profiles (config/profiles.json).
PROFILES = {
    "standard": CostProfile(tp_weight=1.0, fp_weight=0.11, fn_weight=1.0),
    "reward_low_FP_rate": CostProfile(tp_weight=1.0, fp_weight=0.22, fn_weight=1.0),
    "reward_low_FN_rate": CostProfile(tp_weight=1.0, fp_weight=0.11, fn_weight=2.0),
}
STANDARD = PROFILES["standard"]
PROBATION_PERCENT = 0.15
# A threshold above every score in [0, 1]: nothing is detected.
NO_DETECTION_THRESHOLD = 1.1


def scaled_sigmoid(relative_position: float) -> float:
    """2*sigmoid(-5x) - 1: about +0.987 at x=-1 (window start), 0 at x=0 (right edge), -1 from x=3."""
    if relative_position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * relative_position)) - 1.0


def probation_length(num_rows: int, percent: float = PROBATION_PERCENT) -> float:
    return min(math.floor(percent * num_rows), percent * 5000)


@dataclass(frozen=True)
class ScoredRow:
    anomaly_score: float
    sweep_score: float
    window: str | None  # None: outside every window


@dataclass(frozen=True)
class ThresholdResult:
    threshold: float
    score: float
    tp: int  # windows with at least one detection
    fn: int  # windows without any
    fp: int  # detections outside every window

    def normalised(self, null_score: float, perfect_score: float) -> float:
        return normalise(self.score, null_score, perfect_score)


def normalise(raw: float, null_score: float, perfect_score: float) -> float:
    if perfect_score == null_score:
        raise ValueError("perfect and null scores are equal: the corpus has no windows")
    return 100.0 * (raw - null_score) / (perfect_score - null_score)


def sweep_rows(
    timestamps: Sequence[str],
    anomaly_scores: Sequence[float],
    windows: Sequence[tuple[str, str]],
    name: str,
    profile: CostProfile = STANDARD,
    probation_percent: float = PROBATION_PERCENT,
) -> list[ScoredRow]:
    """The scorable rows of one file (probationary rows dropped), each with its sweep score.

    ``windows`` are (first, last) timestamps, both present in ``timestamps``, in time order.
    """
    if len(timestamps) != len(anomaly_scores):
        raise ValueError(f"{name}: {len(timestamps)} timestamps but {len(anomaly_scores)} scores")
    index_of = {ts: i for i, ts in enumerate(timestamps)}
    bounds = []
    for first, last in windows:
        if first not in index_of or last not in index_of:
            raise ValueError(f"{name}: window [{first}, {last}] does not start and end on data rows")
        bounds.append((index_of[first], index_of[last], f"{name}|{first}"))
    bounds.sort()
    for (_, prev_end, _), (start, _, _) in zip(bounds, bounds[1:], strict=False):
        if start <= prev_end:
            raise ValueError(f"{name}: windows overlap")

    max_tp = scaled_sigmoid(-1.0)
    probation = probation_length(len(timestamps), probation_percent)
    rows: list[ScoredRow] = []
    next_window = 0
    current = None  # (start, end, window name) of the window the row is in
    previous_end: int | None = None
    previous_width = 0
    for i, score in enumerate(anomaly_scores):
        if current is None and next_window < len(bounds) and i == bounds[next_window][0]:
            current = bounds[next_window]
            next_window += 1
        if current is not None:
            start, end, window_name = current
            width = end - start + 1
            sweep = scaled_sigmoid(-(end - i + 1) / width) * profile.tp_weight / max_tp
        else:
            window_name = None
            if previous_end is None:
                position_past = 3.0
            elif previous_width > 1:
                position_past = abs(previous_end - i) / (previous_width - 1)
            else:  # a one-row window: NAB would divide by zero; treat as far past it
                position_past = 3.0
            sweep = scaled_sigmoid(position_past) * profile.fp_weight
        if i >= probation:
            rows.append(ScoredRow(float(score), sweep, window_name))
        if current is not None and i == current[1]:
            previous_end, previous_width = current[1], current[1] - current[0] + 1
            current = None
    return rows


def scores_by_threshold(rows: Iterable[ScoredRow], profile: CostProfile = STANDARD) -> list[ThresholdResult]:
    """The score at every candidate threshold, highest threshold first.

    The first entry (threshold 1.1) detects nothing; each further entry is the threshold equal to a
    distinct anomaly score, detecting every row scoring at least that.
    """
    ordered = sorted(rows, key=lambda row: row.anomaly_score, reverse=True)
    window_scores = {row.window: -profile.fn_weight for row in ordered if row.window is not None}
    windows_total = len(window_scores)
    detected: set[str] = set()
    window_sum = -profile.fn_weight * windows_total
    fp_sum = 0.0
    fp = 0
    results: list[ThresholdResult] = []
    threshold = NO_DETECTION_THRESHOLD

    def snapshot() -> ThresholdResult:
        found = len(detected)
        return ThresholdResult(threshold, window_sum + fp_sum, found, windows_total - found, fp)

    for row in ordered:
        if row.anomaly_score != threshold:
            results.append(snapshot())
            threshold = row.anomaly_score
        if row.window is None:
            fp += 1
            fp_sum += row.sweep_score
        else:
            detected.add(row.window)
            best = window_scores[row.window]
            if row.sweep_score > best:
                window_sum += row.sweep_score - best
                window_scores[row.window] = row.sweep_score
    results.append(snapshot())
    return results


def score_at_threshold(
    rows: Iterable[ScoredRow], threshold: float, profile: CostProfile = STANDARD
) -> ThresholdResult:
    """The score when every row with ``anomaly_score >= threshold`` is a detection."""
    window_best: dict[str, float] = {}
    fp = 0
    fp_sum = 0.0
    for row in rows:
        if row.window is not None:
            best = window_best.setdefault(row.window, -profile.fn_weight)
            if row.anomaly_score >= threshold and row.sweep_score > best:
                window_best[row.window] = row.sweep_score
        elif row.anomaly_score >= threshold:
            fp += 1
            fp_sum += row.sweep_score
    tp = sum(1 for score in window_best.values() if score != -profile.fn_weight)
    return ThresholdResult(threshold, sum(window_best.values()) + fp_sum, tp, len(window_best) - tp, fp)


def best_threshold(rows: Iterable[ScoredRow], profile: CostProfile = STANDARD) -> ThresholdResult:
    """NAB's threshold optimisation: the threshold with the highest summed score over the corpus.

    Ties go to the highest threshold (the first one reached in the sweep).
    """
    best = None
    for result in scores_by_threshold(rows, profile):
        if best is None or result.score > best.score:
            best = result
    assert best is not None  # the sweep always has the no-detection entry
    return best


@dataclass
class DetectorReport:
    detector: str
    profile: str
    threshold: float
    raw_score: float
    null_score: float
    perfect_score: float
    tp: int
    fp: int
    fn: int
    per_file: dict[str, ThresholdResult] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return normalise(self.raw_score, self.null_score, self.perfect_score)


def null_and_perfect(
    corpus: dict[str, tuple[Sequence[str], Sequence[tuple[str, str]]]],
    profile: CostProfile = STANDARD,
    probation_percent: float = PROBATION_PERCENT,
) -> tuple[float, float]:
    """NAB's normalisation anchors: the null detector (a constant 0.5, scored like any detector,
    threshold optimised too) and the perfect one (the TP weight for every window)."""
    rows = []
    windows = 0
    for name, (timestamps, file_windows) in corpus.items():
        null_scores = [0.5] * len(timestamps)
        rows.extend(sweep_rows(timestamps, null_scores, file_windows, name, profile, probation_percent))
        windows += len(file_windows)
    return best_threshold(rows, profile).score, profile.tp_weight * windows


def score_detector(
    detector: str,
    corpus: dict[str, tuple[Sequence[str], Sequence[tuple[str, str]]]],
    anomaly_scores: Mapping[str, Sequence[float]],
    profile_name: str = "standard",
    probation_percent: float = PROBATION_PERCENT,
) -> DetectorReport:
    """Score one detector's output on a corpus: ``corpus[name] = (timestamps, windows)``."""
    profile = PROFILES[profile_name]
    rows_by_file = {
        name: sweep_rows(timestamps, anomaly_scores[name], windows, name, profile, probation_percent)
        for name, (timestamps, windows) in corpus.items()
    }
    chosen = best_threshold([row for rows in rows_by_file.values() for row in rows], profile)
    null_score, perfect_score = null_and_perfect(corpus, profile, probation_percent)
    per_file = {
        name: score_at_threshold(rows, chosen.threshold, profile) for name, rows in rows_by_file.items()
    }
    return DetectorReport(
        detector=detector,
        profile=profile_name,
        threshold=chosen.threshold,
        raw_score=chosen.score,
        null_score=null_score,
        perfect_score=perfect_score,
        tp=chosen.tp,
        fp=chosen.fp,
        fn=chosen.fn,
        per_file=per_file,
    )
