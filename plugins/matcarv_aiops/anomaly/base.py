"""What every detector shares: the per-series state envelope and the streaming interface.

A detector is causal: the score of a point is computed from the state built by the points before it,
then the point is folded into the state. ``score_series(values, state)`` scores a run of points and
returns the state to store, so the 5-minute job scores only new datapoints and resumes each series
from its stored state; scoring a series in chunks gives exactly the scores of one pass.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar


class StateError(ValueError):
    """A stored state that this detector cannot resume from."""


class SeriesState:
    """One series' detector state: JSON-able, a few kilobytes at most.

    ``fields`` holds only JSON types (numbers, lists of numbers, None), so ``to_dict`` can go straight
    to ``json.dumps`` and back through ``from_dict``.
    """

    __slots__ = ("detector", "version", "fields")

    def __init__(self, detector: str, version: int, fields: dict[str, Any]):
        self.detector = detector
        self.version = version
        self.fields = fields

    def to_dict(self) -> dict[str, Any]:
        return {"detector": self.detector, "version": self.version, **self.fields}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeriesState:
        if not isinstance(data, dict) or "detector" not in data or "version" not in data:
            raise StateError("stored state is not a detector state (no 'detector'/'version')")
        fields = {key: value for key, value in data.items() if key not in ("detector", "version")}
        return cls(str(data["detector"]), int(data["version"]), fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeriesState) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"SeriesState({self.detector!r}, v{self.version}, {sorted(self.fields)})"


class Detector(ABC):
    """A causal streaming anomaly detector; scores are in [0, 1]."""

    name: ClassVar[str]
    version: ClassVar[int] = 1

    @abstractmethod
    def initial_fields(self) -> dict[str, Any]:
        """The state of a series nothing has been seen of."""

    @abstractmethod
    def _score(self, values: Sequence[float], fields: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
        """Score ``values`` in order from ``fields``; return the scores and the fields after them."""

    def new_state(self) -> SeriesState:
        return SeriesState(self.name, self.version, self.initial_fields())

    def score_series(
        self, values: Iterable[float], state: SeriesState | dict | None = None
    ) -> tuple[list[float], SeriesState]:
        values = [float(value) for value in values]
        for position, value in enumerate(values):
            if not math.isfinite(value):
                raise ValueError(f"value {position} is {value}: scores need finite numbers")
        if state is None:
            state = self.new_state()
        elif isinstance(state, dict):
            state = SeriesState.from_dict(state)
        if state.detector != self.name or state.version != self.version:
            raise StateError(
                f"state is for {state.detector} v{state.version}, not {self.name} v{self.version}"
            )
        expected = set(self.initial_fields())
        if set(state.fields) != expected:
            raise StateError(
                f"{self.name} state fields are {sorted(state.fields)}, expected {sorted(expected)}"
            )
        scores, fields = self._score(values, state.fields)
        return scores, SeriesState(self.name, self.version, fields)


def normal_tail(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def sorted_median(ordered: Sequence[float]) -> float:
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def sorted_mad(ordered: Sequence[float], center: float) -> float:
    """Median absolute deviation from ``center`` of a sorted sequence, in O(log n) steps.

    The distances below ``center`` (read right to left) and above it (left to right) are two sorted
    sequences; their k-th smallest merged element is found by bisection, without building either.
    """
    n = len(ordered)
    split = bisect_left(ordered, center)
    below = split  # distances center - ordered[split - 1 - i]
    above = n - split  # distances ordered[split + i] - center

    def kth(k: int) -> float:  # k-th smallest distance, 0-based
        lo, hi = max(0, k + 1 - above), min(k + 1, below)
        while lo < hi:
            taken_below = (lo + hi) // 2
            taken_above = k + 1 - taken_below
            if center - ordered[split - 1 - taken_below] < ordered[split + taken_above - 1] - center:
                lo = taken_below + 1
            else:
                hi = taken_below
        taken_below, taken_above = lo, k + 1 - lo
        last_below = center - ordered[split - taken_below] if taken_below else -math.inf
        last_above = ordered[split + taken_above - 1] - center if taken_above else -math.inf
        return max(last_below, last_above)

    mid = n // 2
    return kth(mid) if n % 2 else 0.5 * (kth(mid - 1) + kth(mid))
