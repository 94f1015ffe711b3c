"""The model (``matcarv`` v3): how unusual a deviation is against the series' own daily extremes.

Scored causally, one point at a time, from a small JSON state (two days of values, and one maximum
per feature per day for four weeks).

1. Deviations, each one-sided (up and down apart, so a CPU that spikes up every night still alerts
   when it drops), from two references:
   - the recent past: the median of the last ``window`` points (a day at 5 minutes);
     ``spike`` is the point minus it, ``level<k>`` the median of the last ``k`` points minus it, for
     each ``k`` in ``shorts`` (half an hour and an hour: a short burst and a slower shift each have
     the scale that shows them best, as ARTime's Haar features look at several scales at once);
   - the same time of day ``period`` and ``2 * period`` points ago (a daily cycle at 5 minutes):
     ``season`` is the point minus whichever of the two is closer, ``season_level<k>`` the median of
     the last ``k`` of those. A broken daily pattern (a missing nightly job, a flat day, a peak that
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
   Such a point renews the rest; it scores only if the point that started or last renewed the rest
   was no alarm (its score under ``gap_score``, the alert threshold) or ``min_gap`` points have
   passed since: an event that escalates over minutes alarms once, not at each step up (NAB counts
   each of those alarms outside a window as a false positive), while an alarm after a sub-threshold
   wobble still gets through at once.

bench/nab/README.md gives the leave-one-category-out NAB scores and how the defaults were chosen.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Sequence
from typing import Any

from matcarv_aiops.anomaly.base import Detector, SeriesState, StateError, sorted_median

# Score at or above which a point is an anomaly (alert, metric), and after which escalations of the same
# event are held back for ``min_gap`` points: novelty 4, i.e. a deviation 3 spreads beyond the series'
# typical daily extreme. The lowest threshold with no alarm on NAB's artificialNoAnomaly files;
# bench/nab/README.md gives the trade-off (the in-sample NAB optimum, 0.72 to 0.74, alarms on noise).
ALERT_THRESHOLD = 0.80


def feature_names(shorts: Sequence[int]) -> tuple[str, ...]:
    """The deviation kinds, in scoring order: the point ones, then (from ``seasonal_start``) the seasonal."""
    levels = [f"level{k}_{side}" for k in shorts for side in ("up", "down")]
    season_levels = [f"season_level{k}_{side}" for k in shorts for side in ("up", "down")]
    return ("spike_up", "spike_down", *levels, "season_up", "season_down", *season_levels)


def _location_scale(maxima: Sequence[float], spread_floor: float) -> tuple[float, float]:
    if not maxima:
        return 0.0, 0.0
    mean = sum(maxima) / len(maxima)
    variance = sum((m - mean) ** 2 for m in maxima) / len(maxima)
    return mean, max(variance**0.5, spread_floor * mean)


class NoveltyDetector(Detector):
    name = "matcarv"
    version = 3

    def __init__(
        self,
        window: int = 288,
        shorts: Sequence[int] = (6, 12),
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
        min_gap: int = 48,
        gap_score: float = ALERT_THRESHOLD,
    ):
        shorts = tuple(int(k) for k in shorts)
        if (
            not shorts
            or len(set(shorts)) != len(shorts)
            or not all(1 <= k <= window for k in shorts)
            or not (min(min_blocks, season_min_blocks) >= 1 and max(min_blocks, season_min_blocks) <= blocks)
            or min(period, block) < 1
            or min(rest, min_gap) < 0
            or not 0.0 < gap_score < 1.0
        ):
            raise ValueError(
                "need distinct shorts each 1 <= short <= window, period >= 1, block >= 1, rest >= 0, "
                "min_gap >= 0, 0 < gap_score < 1 and 1 <= min_blocks, season_min_blocks <= blocks"
            )
        self.window = window
        self.shorts = shorts
        self.features = feature_names(shorts)
        self.seasonal_start = 2 + 2 * len(shorts)
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
        self.min_gap = min_gap
        self.gap_score = gap_score
        self.gap_novelty = gap_score / (1.0 - gap_score)  # the novelty whose score is gap_score
        self.history = max(window, 2 * period if seasonal else 0)

    def initial_fields(self) -> dict[str, Any]:
        return {
            "history": [],  # the last max(window, 2 * period) values, oldest first
            "season_recent": [],  # the last max(shorts) - 1 seasonal deviations
            "seen": 0,  # points seen
            "in_block": 0,  # points in the block in progress
            "block_maxima": [[] for _ in self.features],  # per feature, one maximum per finished block
            "current_maxima": [
                0.0 for _ in self.features
            ],  # per feature, the maximum in the block in progress
            "rest_left": 0,  # points of rest left after an alarm
            "rest_novelty": 0.0,  # the novelty of the point that started the rest
        }

    def score_series(self, values, state=None):
        # A state of an earlier version is replayed, not refused, so the job keeps running after a
        # deploy: v1 kept its last 144 values, v2 its last two days; the series re-learns its extremes
        # from them.
        if isinstance(state, SeriesState):
            state = state.to_dict()
        if isinstance(state, dict) and state.get("detector") == self.name and state.get("version") in (1, 2):
            kept = state.get("buffer" if state["version"] == 1 else "history")
            if not isinstance(kept, list):
                raise StateError(f"matcarv v{state['version']} state without its values")
            _, state = super().score_series(kept, None)
        return super().score_series(values, state)

    def _score(self, values: Sequence[float], fields: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
        count = len(self.features)
        if len(fields["block_maxima"]) != count or len(fields["current_maxima"]) != count:
            raise StateError(
                f"state has {len(fields['block_maxima'])} features, this model ({self.shorts=}) has {count}"
            )
        window, shorts, period, block = self.window, self.shorts, self.period, self.block
        longest = max(shorts)
        seasonal, rel, floor_share = self.seasonal, self.min_relative_scale, self.spread_floor
        min_blocks, repeat = self.min_blocks, self.repeat_factor
        rest, rest_level = self.rest, self.rest_level
        rest_factor, rest_margin = self.rest_factor, self.rest_margin
        seasonal_start = self.seasonal_start
        min_gap, gap_novelty = self.min_gap, self.gap_novelty
        history: deque[float] = deque(fields["history"], maxlen=self.history)
        ordered = sorted(list(history)[-window:])
        recent = deque(list(history)[len(history) - (longest - 1) :] if longest > 1 else [], maxlen=longest)
        season_recent = deque(fields["season_recent"], maxlen=longest)
        seen, in_block = fields["seen"], fields["in_block"]
        finished = [deque(maxima, maxlen=self.blocks) for maxima in fields["block_maxima"]]
        calibration = [_location_scale(maxima, floor_share) for maxima in finished]
        needed = [min_blocks if i < seasonal_start else self.season_min_blocks for i in range(count)]
        ready = [len(maxima) >= need for maxima, need in zip(finished, needed, strict=True)]
        record_gate, min_deviation = self.record_gate, self.min_deviation
        records = [max(maxima, default=0.0) for maxima in finished]
        current = list(fields["current_maxima"])
        rest_left, rest_novelty = fields["rest_left"], fields["rest_novelty"]
        scores = []
        deviations = [0.0] * count
        for x in values:
            recent.append(x)
            n = len(history)
            season = 0.0
            if seasonal and n >= period:
                season = x - history[n - period]
                if n >= 2 * period:
                    older = x - history[n - 2 * period]
                    if abs(older) < abs(season):
                        season = older
                season_recent.append(season)
            if not ordered:
                scores.append(0.0)
            else:
                baseline = sorted_median(ordered)
                spike = x - baseline
                deviations[0] = spike if spike > 0 else 0.0
                deviations[1] = -spike if spike < 0 else 0.0
                deviations[seasonal_start] = season if season > 0 else 0.0
                deviations[seasonal_start + 1] = -season if season < 0 else 0.0
                recent_values = list(recent)
                season_values = list(season_recent)
                for j, k in enumerate(shorts):
                    level = sorted_median(sorted(recent_values[-k:])) - baseline
                    deviations[2 + 2 * j] = level if level > 0 else 0.0
                    deviations[3 + 2 * j] = -level if level < 0 else 0.0
                    season_level = sorted_median(sorted(season_values[-k:])) if season_values else 0.0
                    deviations[seasonal_start + 2 + 2 * j] = season_level if season_level > 0 else 0.0
                    deviations[seasonal_start + 3 + 2 * j] = -season_level if season_level < 0 else 0.0
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
                    since = rest - rest_left  # points since the rest started or was last renewed
                    rest_left -= 1
                    if novelty > rest_novelty * rest_margin:
                        if since < min_gap and rest_novelty >= gap_novelty:
                            score *= rest_factor
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
                    if i < seasonal_start or seasonal_complete:
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
            "season_recent": list(season_recent)[1:]
            if len(season_recent) == longest
            else list(season_recent),
            "seen": seen,
            "in_block": in_block,
            "block_maxima": [list(maxima) for maxima in finished],
            "current_maxima": current,
            "rest_left": rest_left,
            "rest_novelty": rest_novelty,
        }
