"""The detectors: causal, resumable from stored state bit for bit, scores in [0, 1], and they find
the anomalies they are built for."""

from __future__ import annotations

import json
import math
import random
import statistics

import pytest

from matcarv_aiops.anomaly import DETECTORS, SeriesState, StateError, make_detector
from matcarv_aiops.anomaly.base import sorted_mad, sorted_median


def noisy_series(n=2000, seed=7):
    """Five-minute CPU-like series: a daily cycle, noise, nightly spikes of similar size."""
    rng = random.Random(seed)
    return [
        40 + 10 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 2) + (25 if i % 288 == 100 else 0)
        for i in range(n)
    ]


@pytest.fixture(params=sorted(DETECTORS))
def detector(request):
    return make_detector(request.param)


def test_appending_future_points_never_changes_earlier_scores(detector):
    values = noisy_series()
    full, _ = detector.score_series(values)
    for cut in (1, 150, 600, 1234):
        prefix, _ = detector.score_series(values[:cut])
        assert prefix == full[:cut]
    changed = values[:1500] + [v * 3 for v in values[1500:]]
    assert detector.score_series(changed)[0][:1500] == full[:1500]


def test_scoring_in_chunks_through_json_state_equals_one_pass(detector):
    values = noisy_series()
    one_pass, final_state = detector.score_series(values)
    chunked, state = [], None
    for start, end in ((0, 1), (1, 300), (300, 301), (301, 1100), (1100, 2000)):
        scores, state = detector.score_series(values[start:end], state)
        state = SeriesState.from_dict(json.loads(json.dumps(state.to_dict())))  # as stored in S3
        chunked.extend(scores)
    assert chunked == one_pass
    assert state == final_state


def test_scores_are_in_unit_interval_and_state_is_small(detector):
    values = noisy_series(4000) + [0.0] * 500 + [1e9] + [0.0] * 50  # flat stretch, huge outlier
    scores, state = detector.score_series(values)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert len(json.dumps(state.to_dict())) < 40_000


def test_state_of_another_detector_is_refused(detector):
    other = next(name for name in DETECTORS if name != detector.name)
    _, foreign = make_detector(other).score_series([1.0, 2.0, 3.0])
    with pytest.raises(StateError, match=f"not {detector.name}"):
        detector.score_series([1.0], foreign)
    with pytest.raises(StateError, match="not a detector state"):
        detector.score_series([1.0], {"buffer": []})
    with pytest.raises(ValueError, match="value 1 is nan"):
        detector.score_series([1.0, float("nan")])


def test_previous_model_flags_a_planted_spike_and_level_shift_above_everything_else():
    values = noisy_series(3000)
    values[2000] += 60  # a spike far above the nightly ones
    for i in range(2500, 3000):  # a sustained shift down
        values[i] -= 25
    scores, _ = make_detector("week_novelty").score_series(values)
    warm = range(300, 3000)
    planted = {2000} | set(range(2500, 2512))
    top_normal = max(scores[i] for i in warm if i not in planted)
    assert scores[2000] > 0.6 and scores[2000] > top_normal
    assert max(scores[2500:2512]) > 0.6 and max(scores[2500:2512]) > top_normal
    # The nightly spikes are the series' normal: after a day of history they score about 0.5 ("as far
    # as the week's extreme"), well under the planted anomalies.
    assert all(scores[i] < 0.55 for i in range(388, 2000, 288))
    assert scores[:288] == [0.0] * 288  # no week to compare against yet


def test_windowed_gaussian_matches_a_direct_computation():
    values = noisy_series(60)
    scores, _ = make_detector("windowed_gaussian", window=20).score_series(values)
    for i in (5, 20, 41, 59):
        past = values[max(0, i - 20) : i]
        z = abs(values[i] - statistics.fmean(past)) / statistics.pstdev(past)
        assert scores[i] == pytest.approx(z / (1 + z), rel=1e-9)


def test_rolling_median_mad_matches_a_direct_computation():
    values = noisy_series(400)
    scores, _ = make_detector("rolling_median_mad", window=50).score_series(values)
    for i in (12, 50, 199, 399):
        past = values[max(0, i - 50) : i]
        median = statistics.median(past)
        z = abs(values[i] - median) / (1.4826 * statistics.median(abs(v - median) for v in past))
        assert scores[i] == pytest.approx(z / (1 + z), rel=1e-9)


def test_sorted_mad_equals_brute_force():
    rng = random.Random(3)
    for n in list(range(1, 30)) + [288, 289]:
        values = sorted(rng.choice([rng.gauss(0, 1), 0.0, 1.0]) for _ in range(n))
        median = sorted_median(values)
        assert sorted_median(values) == statistics.median(values)
        assert sorted_mad(values, median) == pytest.approx(statistics.median(abs(v - median) for v in values))


def test_unknown_detector_and_bad_parameters():
    with pytest.raises(ValueError, match="unknown detector 'nope'"):
        make_detector("nope")
    with pytest.raises(ValueError):
        make_detector("matcarv", shorts=(0,))
    with pytest.raises(ValueError):
        make_detector("matcarv", shorts=(6, 6))
    with pytest.raises(ValueError):
        make_detector("matcarv", gap_score=1.0)
