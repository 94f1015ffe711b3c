"""Causal streaming anomaly detection for CloudWatch series: the model and two baselines.

``make_detector(name)`` builds a detector; ``score_series(values, state)`` scores new points of one
series from its stored state and returns the state to store next.
"""

from __future__ import annotations

from matcarv_aiops.anomaly.base import Detector, SeriesState, StateError
from matcarv_aiops.anomaly.baselines import RollingMedianMad, WindowedGaussian
from matcarv_aiops.anomaly.model import ALERT_THRESHOLD, NoveltyDetector
from matcarv_aiops.anomaly.week_novelty import WeekNoveltyDetector

DETECTORS: dict[str, type[Detector]] = {
    NoveltyDetector.name: NoveltyDetector,
    WeekNoveltyDetector.name: WeekNoveltyDetector,
    WindowedGaussian.name: WindowedGaussian,
    RollingMedianMad.name: RollingMedianMad,
}
DEFAULT_DETECTOR = "matcarv"


def make_detector(name: str = DEFAULT_DETECTOR, **params) -> Detector:
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}") from None
    return cls(**params)


def score_series(values, state=None, detector: str = DEFAULT_DETECTOR):
    """Score ``values`` with the default model from ``state`` (None: a new series)."""
    return make_detector(detector).score_series(values, state)


__all__ = [
    "ALERT_THRESHOLD",
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "Detector",
    "SeriesState",
    "StateError",
    "make_detector",
    "score_series",
]
