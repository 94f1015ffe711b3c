"""Two reference detectors, scored on the same benchmark as the model.

- ``WindowedGaussian``: NAB's windowed Gaussian: the Gaussian tail probability of each point under
  the mean and standard deviation of the previous ``window`` points (NAB uses 1,000).
- ``RollingMedianMad``: the robust counterpart: the tail probability of the point's robust z-score
  ``|x - median| / (1.4826 * MAD)`` over the previous ``window`` points (one day at 5 minutes).

Both score ``|z| / (1 + |z|)``, 0 before ``min_history`` points. That ranks points exactly as NAB's
Gaussian tail probability ``1 - P(Z > |z|)`` does, except that the tail probability rounds to 1.0 for
every |z| past about 8.3, tying all large outliers together; the benchmark sweeps thresholds over the
ranking, so the ties would handicap the baselines.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Sequence
from typing import Any

from matcarv_aiops.anomaly.base import Detector, sorted_mad, sorted_median

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation
MEAN_AD_TO_SIGMA = 1.2533  # likewise for the mean absolute deviation


def squash(z: float) -> float:
    """A strictly increasing map of [0, inf) onto [0, 1)."""
    return z / (1.0 + z)


class WindowedGaussian(Detector):
    name = "windowed_gaussian"

    def __init__(self, window: int = 1000, min_history: int = 2):
        if window < 2 or min_history < 1:
            raise ValueError("window must be >= 2 and min_history >= 1")
        self.window = window
        self.min_history = min_history

    def initial_fields(self) -> dict[str, Any]:
        # mean and m2 (sum of squared deviations) are carried, not recomputed from the buffer, so a
        # resumed series continues bit-for-bit where it stopped.
        return {"buffer": [], "mean": 0.0, "m2": 0.0}

    def _score(self, values: Sequence[float], fields: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
        buffer = deque(fields["buffer"], maxlen=self.window)
        mean, m2 = float(fields["mean"]), float(fields["m2"])
        scores = []
        for x in values:
            n = len(buffer)
            if n >= self.min_history:
                std = math.sqrt(max(m2, 0.0) / n) or 1e-6  # NAB's floor for a flat window
                scores.append(squash(abs(x - mean) / std))
            else:
                scores.append(0.0)
            if n == self.window:  # slide: drop the oldest (Welford's update, in reverse)
                old = buffer[0]
                n -= 1
                delta = old - mean
                mean -= delta / n
                m2 -= delta * (old - mean)
            buffer.append(x)
            n += 1
            delta = x - mean
            mean += delta / n
            m2 += delta * (x - mean)
        return scores, {"buffer": list(buffer), "mean": mean, "m2": m2}


class RollingMedianMad(Detector):
    name = "rolling_median_mad"

    def __init__(self, window: int = 288, min_history: int = 12):
        if window < 3 or min_history < 1:
            raise ValueError("window must be >= 3 and min_history >= 1")
        self.window = window
        self.min_history = min_history

    def initial_fields(self) -> dict[str, Any]:
        return {"buffer": []}

    def _score(self, values: Sequence[float], fields: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
        buffer = deque(fields["buffer"], maxlen=self.window)
        ordered = sorted(buffer)
        scores = []
        for x in values:
            if len(buffer) >= self.min_history:
                median = sorted_median(ordered)
                scale = MAD_TO_SIGMA * sorted_mad(ordered, median)
                if scale == 0.0:
                    # Over half the window is one value (idle disks, zero counts): fall back to the
                    # mean absolute deviation, as the modified z-score of Iglewicz and Hoaglin does.
                    scale = MEAN_AD_TO_SIGMA * sum(abs(v - median) for v in ordered) / len(ordered)
                deviation = abs(x - median)
                if scale > 0.0:
                    scores.append(squash(deviation / scale))
                else:  # a perfectly flat window: anything off it is as anomalous as it gets
                    scores.append(1.0 if deviation > 0 else 0.0)
            else:
                scores.append(0.0)
            if len(buffer) == self.window:
                del ordered[bisect_left(ordered, buffer[0])]
            buffer.append(x)
            insort(ordered, x)
        return scores, {"buffer": list(buffer)}
