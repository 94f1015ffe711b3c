"""The previous model (``week_novelty``, the default until issue 16): how far a point goes beyond the
series' own extremes of the past week.

Scored causally, one point at a time, from a small state (a day of values and a few maxima per day).

1. Baseline: the median of the last ``window`` points (12 hours at 5 minutes).
2. Deviations from it, each one-sided (up and down apart, so a CPU that spikes up every night still
   alerts when it drops):
   - ``spike``: the point itself minus the baseline (spikes and dips);
   - ``level``: the median of the last ``short`` points (an hour) minus the baseline (level shifts and
     sustained bumps, which single noisy points hide).
3. Novelty: each deviation divided by the largest deviation of its kind seen over the past
   ``blocks`` blocks of ``block`` points (a week of day-long blocks, one maximum kept per block, plus
   the block in progress). Above 1 the point goes further than anything of its kind for a week.
   Scaling by the series' own extremes is what lets one threshold serve every series: a disk that
   bursts to 400 MB/s nightly is not anomalous when it does it again, a flat CPU that moves by 2 % is;
   and the score does not depend on the unit.
4. The score is ``novelty / (1 + novelty)`` for the most novel deviation, in [0, 1); 0.5 means "as far
   as the week's extreme". Once a point has set a new extreme, the next points of the same event are
   measured against it, so a shift or burst scores high at its start and not at every point after.
5. Suppression: a point no more novel than the recent alerts (their novelty, capped and decaying with
   a half-life of 12 hours) has its score halved, so the tail of an event does not alert again.

The defaults were chosen on the labelled NAB CloudWatch corpus (71.5 in-sample there); kept for
comparison: bench/nab/README.md scores it leaving one category out, next to the current model
(``signed=False`` pools up and down deviations).
Before ``warmup`` points (a day) there is no week to compare with and the score is 0.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Sequence
from typing import Any

from matcarv_aiops.anomaly.base import Detector, sorted_median

FEATURES = ("spike_up", "spike_down", "level_up", "level_down")


class WeekNoveltyDetector(Detector):
    name = "week_novelty"
    version = 1

    def __init__(
        self,
        window: int = 144,
        short: int = 12,
        block: int = 288,
        blocks: int = 7,
        warmup: int = 288,
        min_relative_scale: float = 1e-3,
        signed: bool = True,
        suppression_half_life: float = 144.0,
        suppressed_factor: float = 0.5,
        alert_cap: float = 3.0,
    ):
        if not (1 <= short <= window) or block < 1 or blocks < 1 or warmup < 1:
            raise ValueError("need 1 <= short <= window, block >= 1, blocks >= 1, warmup >= 1")
        self.window = window
        self.short = short
        self.block = block
        self.blocks = blocks
        self.warmup = warmup
        # A deviation must be at least this fraction of the baseline to count as novel: without it a
        # series that never moved would alert on its first rounding-level wobble.
        self.min_relative_scale = min_relative_scale
        self.signed = signed
        self.suppression_decay = 0.5 ** (1.0 / suppression_half_life)
        self.suppressed_factor = suppressed_factor
        self.alert_cap = alert_cap

    def initial_fields(self) -> dict[str, Any]:
        return {
            "buffer": [],  # the last `window` values, oldest first
            "seen": 0,  # points seen, for the warm-up
            "in_block": 0,  # points in the block in progress
            "block_maxima": [[] for _ in FEATURES],  # per feature, one maximum per finished block
            "current_maxima": [0.0 for _ in FEATURES],  # per feature, the maximum in the block in progress
            "alert_level": 0.0,  # the novelty of recent alerts, decaying
        }

    def _score(self, values: Sequence[float], fields: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
        window, short, block, warmup = self.window, self.short, self.block, self.warmup
        rel, signed = self.min_relative_scale, self.signed
        buffer = deque(fields["buffer"], maxlen=window)
        ordered = sorted(buffer)
        recent = deque(list(buffer)[len(buffer) - (short - 1) :] if short > 1 else [], maxlen=short)
        seen, in_block = fields["seen"], fields["in_block"]
        finished = [deque(maxima, maxlen=self.blocks) for maxima in fields["block_maxima"]]
        # The reference of each feature: the largest of its finished-block maxima and the current one.
        finished_max = [max(maxima, default=0.0) for maxima in finished]
        current = list(fields["current_maxima"])
        alert_level = fields["alert_level"]
        decay, damp, cap = self.suppression_decay, self.suppressed_factor, self.alert_cap
        scores = []
        for x in values:
            recent.append(x)
            if not ordered:
                scores.append(0.0)
            else:
                baseline = sorted_median(ordered)
                level = sorted_median(sorted(recent)) - baseline
                spike = x - baseline
                if signed:
                    deviations = (max(spike, 0.0), max(-spike, 0.0), max(level, 0.0), max(-level, 0.0))
                else:
                    deviations = (abs(spike), 0.0, abs(level), 0.0)
                score = 0.0
                if seen >= warmup:
                    floor = rel * abs(baseline) + 1e-12
                    novelty = 0.0
                    for i, deviation in enumerate(deviations):
                        reference = finished_max[i] if finished_max[i] > current[i] else current[i]
                        ratio = deviation / (reference if reference > floor else floor)
                        if ratio > novelty:
                            novelty = ratio
                    score = novelty / (1.0 + novelty)
                    if novelty > alert_level:
                        alert_level = novelty if novelty < cap else cap
                    else:
                        score *= damp
                    alert_level *= decay
                scores.append(score)
                for i, deviation in enumerate(deviations):
                    if deviation > current[i]:
                        current[i] = deviation
            seen += 1
            in_block += 1
            if in_block == block:
                for i, maxima in enumerate(finished):
                    maxima.append(current[i])
                    finished_max[i] = max(maxima)
                current = [0.0 for _ in FEATURES]
                in_block = 0
            if len(buffer) == window:
                del ordered[bisect_left(ordered, buffer[0])]
            buffer.append(x)
            insort(ordered, x)
        return scores, {
            "buffer": list(buffer),
            "seen": seen,
            "in_block": in_block,
            "block_maxima": [list(maxima) for maxima in finished],
            "current_maxima": current,
            "alert_level": alert_level,
        }
