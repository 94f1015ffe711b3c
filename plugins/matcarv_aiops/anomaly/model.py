"""The model (``matcarv`` v2): how unusual a deviation is against the series' own daily extremes.

Scored causally, one point at a time, from a small JSON state (two days of values, and one maximum
per feature per day for four weeks).

1. Deviations, each one-sided (up and down apart, so a CPU that spikes up every night still alerts
   when it drops), from two references:
   - the recent past: the median of the last ``window`` points (a day at 5 minutes);
     ``spike`` is the point minus it, ``level`` the median of the last ``short`` points minus it;
   - the same time of day ``period`` and ``2 * period`` points ago (a daily cycle at 5 minutes):
     ``season`` is the point minus whichever of the two is closer, ``season_level`` the median of the
     last ``short`` of those. A broken daily pattern (a missing nightly job, a flat day, a peak that
     grew) is novel here even when every value stays within its usual range. Comparing with the
     closer of two days keeps an anomaly from echoing a day later.
2. Calibration against the series' own extremes: for each feature, the largest deviation of each
   of the past ``blocks`` blocks of ``block`` points (four weeks of days) is kept. Their mean and
   spread (standard deviation, at least ``spread_floor`` times the mean) say how far this series
   usually goes in a day; a deviation's novelty is ``1 + (deviation - mean) / spread``: 1 for a
   typical daily extreme, 2 for one spread beyond it. A bursty series whose daily extremes vary a lot
   needs a larger deviation than a steady one, and the unit drops out, so one threshold serves every
   series (the calibration idea of HTM's anomaly likelihood, applied to daily extremes). A deviation
   no larger than one already seen in the block in progress, or in any kept block (``record_gate``),
   counts ``repeat_factor`` of its excess: what the series has done before is less novel. The point
   deviations score once they have ``min_blocks`` finished blocks (from the third day), the seasonal
   ones once they have ``season_min_blocks`` (they start a day later: from the fifth day). Before the
   point deviations score, but after a full ``window``, only a value beyond the window's range counts:
   its novelty is ``1 + beyond / range`` (HTM's spatial anomaly), so a new series alerts on a gross
   outlier from its second day. A deviation under ``min_deviation`` times the baseline does not count
   at all (ARTime ignores changes under 10 %).
3. The score is ``novelty / (1 + novelty)`` for the most novel deviation, in [0, 1); 0.5 means "a
   typical daily extreme".
4. One alarm per event (ARTime's and contextOSE's masking after a detection): a point whose novelty
   passes ``rest_level`` starts a rest of ``rest`` points, during which scores are multiplied by
   ``rest_factor`` unless a point is ``rest_margin`` times as novel as the one that started it.

bench/nab/README.md gives the leave-one-category-out NAB scores and how the defaults were chosen.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Sequence
from typing import Any

from matcarv_aiops.anomaly.base import Detector, SeriesState, StateError, sorted_median

FEATURES = (
    "spike_up",
    "spike_down",
    "level_up",
    "level_down",
    "season_up",
    "season_down",
    "season_level_up",
    "season_level_down",
)
SEASONAL = 4  # features from this index on compare with earlier days


def _location_scale(maxima: Sequence[float], spread_floor: float) -> tuple[float, float]:
    if not maxima:
        return 0.0, 0.0
    mean = sum(maxima) / len(maxima)
    variance = sum((m - mean) ** 2 for m in maxima) / len(maxima)
    return mean, max(variance**0.5, spread_floor * mean)


class NoveltyDetector(Detector):
    name = "matcarv"
    version = 2

    def __init__(
        self,
        window: int = 288,
        short: int = 6,
        period: int = 288,
        block: int = 288,
        blocks: int = 28,
        min_blocks: int = 2,
        seasonal: bool = True,
        spread_floor: float = 0.1,
        repeat_factor: float = 0.5,
        min_relative_scale: float = 1e-3,
        rest: int = 288,
        rest_level: float = 1.0,
        rest_factor: float = 0.0,
        rest_margin: float = 1.5,
        record_gate: bool = True,
        season_min_blocks: int = 3,
        min_deviation: float = 0.1,
    ):
        if (
            not (
                1 <= short <= window
                and min(min_blocks, season_min_blocks) >= 1
                and max(min_blocks, season_min_blocks) <= blocks
            )
            or min(period, block) < 1
            or rest < 0
        ):
            raise ValueError(
                "need 1 <= short <= window, period >= 1, block >= 1, rest >= 0 and "
                "1 <= min_blocks, season_min_blocks <= blocks"
            )
        self.window = window
        self.short = short
        self.period = period
        self.block = block
        self.blocks = blocks
        self.min_blocks = min_blocks
        self.seasonal = seasonal
        self.spread_floor = spread_floor
        self.repeat_factor = repeat_factor
        # A deviation must be at least this fraction of the baseline to count: without it a series
        # that never moved would alert on its first rounding-level wobble.
        self.min_relative_scale = min_relative_scale
        self.rest = rest
        self.rest_level = rest_level
        self.rest_factor = rest_factor
        self.rest_margin = rest_margin
        self.record_gate = record_gate
        self.season_min_blocks = season_min_blocks
        self.min_deviation = min_deviation
        self.history = max(window, 2 * period if seasonal else 0)

    def initial_fields(self) -> dict[str, Any]:
        return {
            "history": [],  # the last max(window, 2 * period) values, oldest first
            "season_recent": [],  # the last short - 1 seasonal deviations
            "seen": 0,  # points seen
            "in_block": 0,  # points in the block in progress
            "block_maxima": [[] for _ in FEATURES],  # per feature, one maximum per finished block
            "current_maxima": [0.0 for _ in FEATURES],  # per feature, the maximum in the block in progress
            "rest_left": 0,  # points of rest left after an alarm
            "rest_novelty": 0.0,  # the novelty of the point that started the rest
        }

    def score_series(self, values, state=None):
        # A state of the previous model (matcarv v1 kept its last 144 values) is replayed, not refused,
        # so the job keeps running after a deploy; the series re-learns its extremes from there.
        if isinstance(state, SeriesState):
            state = state.to_dict()
        if isinstance(state, dict) and state.get("detector") == self.name and state.get("version") == 1:
            buffer = state.get("buffer")
            if not isinstance(buffer, list):
                raise StateError("matcarv v1 state without a buffer")
            _, state = super().score_series(buffer, None)
        return super().score_series(values, state)

    def _score(self, values: Sequence[float], fields: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
        window, short, period, block = self.window, self.short, self.period, self.block
        seasonal, rel, floor_share = self.seasonal, self.min_relative_scale, self.spread_floor
        min_blocks, repeat = self.min_blocks, self.repeat_factor
        rest, rest_level = self.rest, self.rest_level
        rest_factor, rest_margin = self.rest_factor, self.rest_margin
        history: deque[float] = deque(fields["history"], maxlen=self.history)
        ordered = sorted(list(history)[-window:])
        recent = deque(list(history)[len(history) - (short - 1) :] if short > 1 else [], maxlen=short)
        season_recent = deque(fields["season_recent"], maxlen=short)
        seen, in_block = fields["seen"], fields["in_block"]
        finished = [deque(maxima, maxlen=self.blocks) for maxima in fields["block_maxima"]]
        calibration = [_location_scale(maxima, floor_share) for maxima in finished]
        needed = [min_blocks if i < SEASONAL else self.season_min_blocks for i in range(len(FEATURES))]
        ready = [len(maxima) >= need for maxima, need in zip(finished, needed, strict=True)]
        record_gate, min_deviation = self.record_gate, self.min_deviation
        records = [max(maxima, default=0.0) for maxima in finished]
        current = list(fields["current_maxima"])
        rest_left, rest_novelty = fields["rest_left"], fields["rest_novelty"]
        count = len(FEATURES)
        scores = []
        for x in values:
            recent.append(x)
            n = len(history)
            season = season_level = 0.0
            if seasonal and n >= period:
                season = x - history[n - period]
                if n >= 2 * period:
                    older = x - history[n - 2 * period]
                    if abs(older) < abs(season):
                        season = older
                season_recent.append(season)
                season_level = sorted_median(sorted(season_recent))
            if not ordered:
                scores.append(0.0)
            else:
                baseline = sorted_median(ordered)
                level = sorted_median(sorted(recent)) - baseline
                spike = x - baseline
                deviations = (
                    spike if spike > 0 else 0.0,
                    -spike if spike < 0 else 0.0,
                    level if level > 0 else 0.0,
                    -level if level < 0 else 0.0,
                    season if season > 0 else 0.0,
                    -season if season < 0 else 0.0,
                    season_level if season_level > 0 else 0.0,
                    -season_level if season_level < 0 else 0.0,
                )
                floor = rel * abs(baseline) + 1e-12
                least = min_deviation * abs(baseline)
                novelty = 0.0
                for i in range(count):
                    deviation = deviations[i]
                    if deviation > least and ready[i]:
                        location, scale = calibration[i]
                        excess = (deviation - location) / (scale if scale > floor else floor)
                        if deviation <= current[i] or (record_gate and deviation <= records[i]):
                            excess *= repeat
                        if 1.0 + excess > novelty:
                            novelty = 1.0 + excess
                    if deviation > current[i]:
                        current[i] = deviation
                if not ready[0] and len(ordered) == window:
                    # Before the point deviations have their days of extremes, but after a full window:
                    # only a value far outside the window's range counts (HTM's spatial anomaly).
                    low, high = ordered[0], ordered[-1]
                    beyond = x - high if x > high else low - x
                    if beyond > least:
                        span = high - low
                        novelty = 1.0 + beyond / (span if span > floor else floor)
                score = novelty / (1.0 + novelty)
                if rest_left > 0:
                    rest_left -= 1
                    if novelty > rest_novelty * rest_margin:
                        rest_left, rest_novelty = rest, novelty
                    else:
                        score *= rest_factor
                elif novelty > rest_level and rest > 0:
                    rest_left, rest_novelty = rest, novelty
                scores.append(score)
            seen += 1
            in_block += 1
            if in_block == block:
                # a seasonal feature's block counts only if the feature existed for all of it
                seasonal_complete = seen - block >= period
                for i, maxima in enumerate(finished):
                    if i < SEASONAL or seasonal_complete:
                        maxima.append(current[i])
                        calibration[i] = _location_scale(maxima, floor_share)
                        ready[i] = len(maxima) >= needed[i]
                        records[i] = max(maxima)
                current = [0.0] * count
                in_block = 0
            if len(ordered) == window:
                del ordered[bisect_left(ordered, history[len(history) - window])]
            history.append(x)
            insort(ordered, x)
        return scores, {
            "history": list(history),
            "season_recent": list(season_recent)[1:] if len(season_recent) == short else list(season_recent),
            "seen": seen,
            "in_block": in_block,
            "block_maxima": [list(maxima) for maxima in finished],
            "current_maxima": current,
            "rest_left": rest_left,
            "rest_novelty": rest_novelty,
        }
