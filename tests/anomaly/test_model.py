"""The model (matcarv v2): finds what it is built for, stays quiet on quiet series, is deterministic,
causal and resumable from JSON state, and picks up a series from a previous-model (v1) state."""

from __future__ import annotations

import json
import math
import random

import pytest

from matcarv_aiops.anomaly import ALERT_THRESHOLD, SeriesState, make_detector, score_series
from tests.anomaly.test_detectors import noisy_series

DAY = 288


def daily_pattern(days=8, seed=5, noise=0.5):
    """A daily cycle with a sharp peak at 10:00 every day, and noise."""
    rng = random.Random(seed)
    return [
        20
        + 5 * math.sin(2 * math.pi * i / DAY)
        + (15 if i % DAY in range(120, 126) else 0)
        + rng.gauss(0, noise)
        for i in range(days * DAY)
    ]


def test_planted_spike_and_level_shift_score_high_and_the_normal_days_do_not_alert():
    values = noisy_series(3000)
    values[2000] += 60  # a spike far above the nightly ones
    for i in range(2500, 3000):  # a sustained shift down
        values[i] -= 25
    scores, _ = score_series(values)
    assert scores[2000] > 0.9
    assert max(scores[2500:2512]) > 0.9
    # The first days learn the series' daily extremes: nothing on them scores (no value goes far outside
    # the first day's range), and no alert on the normal days after (the nightly spikes included).
    assert scores[: 2 * DAY] == [0.0] * (2 * DAY)
    assert all(scores[i] < ALERT_THRESHOLD for i in range(2 * DAY, 2000))


def test_on_the_second_day_only_a_value_far_outside_the_first_days_range_alerts():
    values = noisy_series(2 * DAY)
    assert max(score_series(values)[0]) == 0.0
    far = list(values)
    far[DAY + 20] = max(values[:DAY]) + 3 * (max(values[:DAY]) - min(values[:DAY]))
    scores, _ = score_series(far)
    assert scores[DAY + 20] >= ALERT_THRESHOLD
    assert max(scores[: DAY + 20]) == 0.0
    early = list(values)
    early[DAY - 20] = far[DAY + 20]  # on the first day nothing is scored at all
    assert max(score_series(early)[0][:DAY]) == 0.0


def test_a_missing_daily_peak_alerts_though_every_value_is_in_range():
    values = daily_pattern()
    quiet, _ = score_series(values)
    broken = list(values)
    for i in range(6 * DAY + 120, 6 * DAY + 126):  # day 7's peak does not happen
        broken[i] -= 15
    scores, _ = score_series(broken)
    assert max(scores[6 * DAY + 120 : 6 * DAY + 126]) > 0.95
    # noise alone stays well under it (the threshold is a trade-off: noise can now and then pass 0.7)
    assert max(quiet) < 0.8 and max(scores[: 6 * DAY + 120]) < 0.8
    assert min(broken[6 * DAY : 7 * DAY]) >= min(values[: 6 * DAY]) - 1  # within the usual range


@pytest.mark.parametrize(
    "values",
    [
        [42.0] * (10 * DAY),  # a flat line
        [10 + 3 * math.sin(2 * math.pi * i / DAY) for i in range(10 * DAY)],  # a perfect daily cycle
        [1.0 if i % DAY < DAY // 2 else 0.0 for i in range(10 * DAY)],  # a square wave
    ],
    ids=["flat", "sine", "square"],
)
def test_no_alarm_on_a_quiet_series(values):
    scores, _ = score_series(values)
    assert max(scores) < ALERT_THRESHOLD


def test_deterministic_across_instances_and_runs():
    values = daily_pattern(days=6, noise=2.0)
    first = make_detector("matcarv").score_series(values)
    second = make_detector("matcarv").score_series(values)
    assert first[0] == second[0]
    assert first[1].to_dict() == second[1].to_dict()


@pytest.mark.parametrize("cut", [1, DAY, 3 * DAY + 7, 4 * DAY + 125, 6 * DAY - 1])
def test_two_halves_through_json_state_equal_one_pass(cut):
    values = daily_pattern(days=7, noise=2.0)
    values[4 * DAY + 121] += 80  # an alarm, so the cut at 4 * DAY + 125 falls inside a rest
    whole, final = score_series(values)
    first, state = score_series(values[:cut])
    stored = json.loads(json.dumps(state.to_dict()))
    second, resumed = score_series(values[cut:], stored)
    assert first + second == whole
    assert resumed == final
    assert max(whole) > ALERT_THRESHOLD  # the alarm is there, so the rest is exercised


def test_future_points_do_not_change_past_scores():
    values = daily_pattern(days=7, noise=2.0)
    whole, _ = score_series(values)
    for cut in (DAY, 4 * DAY, 5 * DAY + 3):
        changed = values[:cut] + [v * -4 + 1000 for v in values[cut:]]
        assert score_series(changed)[0][:cut] == whole[:cut]
        assert score_series(values[:cut])[0] == whole[:cut]


def test_a_previous_model_state_is_replayed_not_refused():
    values = daily_pattern(days=6)
    _, old = make_detector("week_novelty").score_series(values[: 2 * DAY])
    stored = {**old.to_dict(), "detector": "matcarv"}  # what the job stored before this version
    assert stored["version"] == 1
    scores, state = score_series(values[2 * DAY :], stored)
    # equal to a fresh series that starts with the v1 buffer (the last 144 values)
    replay, expected = score_series(old.fields["buffer"] + values[2 * DAY :])
    assert scores == replay[len(old.fields["buffer"]) :]
    assert state == expected and state.version == 2
    assert isinstance(SeriesState.from_dict(json.loads(json.dumps(state.to_dict()))), SeriesState)
