"""Causal streaming anomaly detection for CloudWatch series: the model and two baselines.

``make_detector(name)`` builds a detector; ``score_series(values, state)`` scores new points of one
series from its stored state and returns the state to store next.
"""

from __future__ import annotations

from matcarv_aiops.anomaly.base import Detector, SeriesState, StateError
from matcarv_aiops.anomaly.baselines import RollingMedianMad, WindowedGaussian
from matcarv_aiops.anomaly.model import NoveltyDetector

DETECTORS: dict[str, type[Detector]] = {
    NoveltyDetector.name: NoveltyDetector,
    WindowedGaussian.name: WindowedGaussian,
    RollingMedianMad.name: RollingMedianMad,
}
DEFAULT_DETECTOR = "matcarv"
# Score at or above which the default model's point is an anomaly (alert, metric). The NAB-optimised
# threshold on the labelled CloudWatch corpus (bench/nab): novelty about 1.08, i.e. 8 % beyond the
# series' most extreme deviation of the past week. Higher trades missed anomalies for fewer alerts.
ALERT_THRESHOLD = 0.52


def make_detector(name: str = DEFAULT_DETECTOR, **params) -> Detector:
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}") from None
    return cls(**params)


def score_series(values, state=None, detector: str = DEFAULT_DETECTOR):
    """Score ``values`` with the default model from ``state`` (None: a new series)."""
    return make_detector(detector).score_series(values, state)


__all__ = ["ALERT_THRESHOLD", "DETECTORS", "DEFAULT_DETECTOR", "Detector", "SeriesState", "StateError", "make_detector", "score_series"]
