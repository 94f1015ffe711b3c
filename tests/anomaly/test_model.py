"""The model (matcarv v3): finds what it is built for, stays quiet on quiet series, is deterministic,
causal and resumable from JSON state, and picks up a series from an earlier version's (v1, v2) state."""

from __future__ import annotations

import json
import math
import random

import pytest

from matcarv_aiops.anomaly import ALERT_THRESHOLD, SeriesState, StateError, make_detector, score_series
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
    stored = {**old.to_dict(), "detector": "matcarv"}  # what the job stored before v2
    assert stored["version"] == 1
    scores, state = score_series(values[2 * DAY :], stored)
    # equal to a fresh series that starts with the v1 buffer (the last 144 values)
    replay, expected = score_series(old.fields["buffer"] + values[2 * DAY :])
    assert scores == replay[len(old.fields["buffer"]) :]
    assert state == expected and state.version == 3
    assert isinstance(SeriesState.from_dict(json.loads(json.dumps(state.to_dict()))), SeriesState)


def test_a_v2_state_is_replayed_from_its_two_days_of_values():
    values = daily_pattern(days=5)
    history = values[DAY : 3 * DAY]  # a v2 state kept the last two days
    stored = {
        "detector": "matcarv",
        "version": 2,
        "history": history,
        "season_recent": [],
        "seen": 3 * DAY,
        "in_block": 0,
        "block_maxima": [[1.0, 2.0]] * 8,
        "current_maxima": [0.0] * 8,
        "rest_left": 0,
        "rest_novelty": 0.0,
    }
    scores, state = score_series(values[3 * DAY :], stored)
    replay, expected = score_series(history + values[3 * DAY :])
    assert scores == replay[len(history) :]
    assert state == expected and state.version == 3
    with pytest.raises(StateError, match="matcarv v2 state without its values"):
        score_series([1.0], {**stored, "history": None})


def test_a_state_with_other_level_scales_is_refused_by_name():
    _, state = make_detector("matcarv", shorts=(6,)).score_series(daily_pattern(days=1))
    with pytest.raises(StateError, match="state has 8 features, this model .* has 12"):
        score_series([1.0], state.to_dict())


def test_the_hour_scale_finds_a_small_sustained_shift_hours_before_the_half_hour_scale():
    """A shift of 1.25 noise sigmas: the median of the last hour is steadier than that of the last
    half hour, so its daily extremes are tighter and the shift leaves them sooner."""
    rng = random.Random(11)
    values = [50 + rng.gauss(0, 4) for _ in range(6 * DAY)]
    start = 5 * DAY + 100
    for i in range(start, 6 * DAY):
        values[i] += 5

    def first_alarm(scores):
        return next((i for i in range(start, len(scores)) if scores[i] >= ALERT_THRESHOLD), None)

    both = first_alarm(make_detector("matcarv").score_series(values)[0])
    half_hour_only = first_alarm(make_detector("matcarv", shorts=(6,)).score_series(values)[0])
    assert both is not None and both - start <= 12
    assert half_hour_only is None or half_hour_only - start >= 48


def test_an_escalating_event_alarms_once_then_again_after_the_gap():
    values = daily_pattern(days=6, noise=1.0)
    start = 5 * DAY + 30
    for step, i in enumerate(range(start, start + 5)):  # five steps up, each far more novel than the last
        values[i] += 40 * 2**step
    later = start + 60  # past the 48-point gap, still inside the day's rest
    values[later] += 40 * 2**6
    gapped, _ = make_detector("matcarv").score_series(values)
    ungapped, _ = make_detector("matcarv", min_gap=0).score_series(values)
    alarms = [i for i in range(start, 6 * DAY) if gapped[i] >= ALERT_THRESHOLD]
    assert alarms == [start, later]
    assert sum(1 for i in range(start, start + 5) if ungapped[i] >= ALERT_THRESHOLD) >= 3


def test_only_an_alarm_holds_back_the_next_one():
    """A wobble under the alert threshold starts a rest but not the gap; an alarm starts both."""
    values = daily_pattern(days=6, noise=1.0)
    first = 5 * DAY + 30
    values[first + 2] += 150
    wobble, alarm = list(values), list(values)
    wobble[first] += 4
    alarm[first] += 6
    after_wobble, _ = score_series(wobble)
    after_alarm, _ = score_series(alarm)
    assert 0.5 < after_wobble[first] < ALERT_THRESHOLD and after_wobble[first + 2] >= ALERT_THRESHOLD
    assert after_alarm[first] >= ALERT_THRESHOLD and after_alarm[first + 2] == 0.0
