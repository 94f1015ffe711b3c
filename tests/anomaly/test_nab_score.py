"""The NAB scorer on small corpora whose scores are worked out by hand below."""

from __future__ import annotations

import math

import pytest

from bench.nab.nab_score import (
    STANDARD,
    best_threshold,
    probation_length,
    scaled_sigmoid,
    score_detector,
    scores_by_threshold,
    sweep_rows,
)

MAX_TP = 2 / (1 + math.exp(-5)) - 1  # the scaled sigmoid at a window's first row, 0.98661


def timestamps(n):
    return [f"t{i:04d}" for i in range(n)]


def corpus_two_files():
    """Two files of 400 rows (probation: the first 60), one 40-row window each."""
    ts = timestamps(400)
    return {"a.csv": (ts, [("t0200", "t0239")]), "b.csv": (ts, [("t0300", "t0339")])}


def detections(n, rows, score=1.0):
    out = [0.0] * n
    for row in rows:
        out[row] = score
    return out


def test_scaled_sigmoid_by_hand():
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(2 / (1 + math.exp(-2.5)) - 1)  # 0.84828
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.0) == -1.0 and scaled_sigmoid(10.0) == -1.0


def test_probation_is_15_percent_capped_at_750():
    assert probation_length(20) == 3
    assert probation_length(400) == 60
    assert probation_length(10_000) == 750


def test_sweep_scores_of_each_kind_of_row():
    # 20 rows, window rows 10..14 (width 5), probation rows 0..2 dropped.
    rows = sweep_rows(timestamps(20), [0.0] * 20, [("t0010", "t0014")], "f")
    assert len(rows) == 17
    by_index = {i + 3: row for i, row in enumerate(rows)}
    assert by_index[3].window is None and by_index[3].sweep_score == pytest.approx(-0.11)  # before any window
    # first row: full TP
    assert by_index[10].window == "f|t0010" and by_index[10].sweep_score == pytest.approx(1.0)
    # Last row of the window: position -(14 - 14 + 1) / 5 = -0.2.
    assert by_index[14].sweep_score == pytest.approx((2 / (1 + math.exp(-1.0)) - 1) / MAX_TP)
    # First row after it: |14 - 15| / (5 - 1) = 0.25 past the window, a cheap false positive.
    assert by_index[15].sweep_score == pytest.approx(0.11 * (2 / (1 + math.exp(1.25)) - 1))
    assert by_index[19].sweep_score == pytest.approx(0.11 * (2 / (1 + math.exp(6.25)) - 1))


def test_perfect_detector_scores_100_and_null_0():
    corpus = corpus_two_files()
    flagged = {"a.csv": detections(400, [200]), "b.csv": detections(400, [300])}
    perfect = score_detector("perfect", corpus, flagged)
    assert perfect.raw_score == pytest.approx(2.0)
    assert perfect.null_score == pytest.approx(-2.0)  # flagging everything costs far more than missing both
    assert perfect.perfect_score == 2.0
    assert perfect.score == pytest.approx(100.0)
    assert (perfect.tp, perfect.fp, perfect.fn) == (2, 0, 0)
    null = score_detector("null", corpus, {"a.csv": [0.5] * 400, "b.csv": [0.5] * 400})
    assert null.score == pytest.approx(0.0)
    silent = score_detector("silent", corpus, {"a.csv": [0.0] * 400, "b.csv": [0.0] * 400})
    assert silent.score == pytest.approx(0.0) and silent.fn == 2


def test_early_detection_beats_late():
    corpus = corpus_two_files()

    def score_at(offset):
        return score_detector(
            "d", corpus, {"a.csv": detections(400, [200 + offset]), "b.csv": detections(400, [300 + offset])}
        ).score

    early, middle, late = score_at(0), score_at(20), score_at(39)
    # Middle row: position -(239 - 220 + 1) / 40 = -0.5 in each window.
    assert middle == pytest.approx(100 * (2 * (2 / (1 + math.exp(-2.5)) - 1) / MAX_TP + 2) / 4)  # 92.99
    # Last row: position -1/40.
    assert late == pytest.approx(100 * (2 * (2 / (1 + math.exp(-0.125)) - 1) / MAX_TP + 2) / 4)
    assert early == pytest.approx(100.0) and early > middle > late > 50


def test_false_positive_costs_and_only_first_detection_counts():
    corpus = corpus_two_files()
    base = {"a.csv": detections(400, [200]), "b.csv": detections(400, [300])}
    # A detection far before any window costs the full 0.11.
    far = dict(base, **{"a.csv": detections(400, [100, 200])})
    assert score_detector("d", corpus, far).score == pytest.approx(100 * (2 - 0.11 + 2) / 4)  # 97.25
    # One just after the window (row 240: 1/39 of a window past it) costs less.
    near = dict(base, **{"a.csv": detections(400, [200, 240])})
    near_cost = 0.11 * (2 / (1 + math.exp(5 / 39)) - 1)
    assert score_detector("d", corpus, near).score == pytest.approx(100 * (2 + near_cost + 2) / 4)
    assert score_detector("d", corpus, near).score > score_detector("d", corpus, far).score
    # A second detection inside a window neither adds nor costs.
    twice = dict(base, **{"a.csv": detections(400, [200, 220])})
    assert score_detector("d", corpus, twice).score == pytest.approx(100.0)
    # Detections in the probationary period (rows 0..59) are not scored at all.
    early = dict(base, **{"a.csv": detections(400, [10, 200])})
    assert score_detector("d", corpus, early).score == pytest.approx(100.0)


def test_threshold_is_optimised_over_the_corpus():
    corpus = corpus_two_files()
    # Window starts score 0.9, ten rows outside windows 0.95, other rows 0.
    a = detections(400, [200], 0.9)
    for row in range(100, 110):
        a[row] = 0.95
    scores = {"a.csv": a, "b.csv": detections(400, [300], 0.9)}
    all_rows = [r for name, (ts, w) in corpus.items() for r in sweep_rows(ts, scores[name], w, name)]
    table = scores_by_threshold(all_rows)
    assert [t.threshold for t in table] == [1.1, 0.95, 0.9, 0.0]
    assert table[0].score == pytest.approx(-2.0)  # nothing detected
    assert table[1].score == pytest.approx(-2.0 - 1.1)  # the ten false positives only
    assert table[2].score == pytest.approx(2.0 - 1.1)  # plus both windows
    best = best_threshold(all_rows)
    assert best.threshold == 0.9 and (best.tp, best.fp, best.fn) == (2, 10, 0)
    report = score_detector("d", corpus, scores)
    assert report.threshold == 0.9 and report.score == pytest.approx(100 * (0.9 + 2) / 4)
    assert report.per_file["a.csv"].fp == 10 and report.per_file["b.csv"].tp == 1


def test_bad_windows_are_rejected():
    with pytest.raises(ValueError, match="does not start and end on data rows"):
        sweep_rows(timestamps(10), [0.0] * 10, [("t0002", "nope")], "f")
    with pytest.raises(ValueError, match="overlap"):
        sweep_rows(timestamps(10), [0.0] * 10, [("t0002", "t0005"), ("t0004", "t0006")], "f")
    with pytest.raises(ValueError, match="timestamps but"):
        sweep_rows(timestamps(10), [0.0] * 9, [], "f")
    assert STANDARD.fp_weight == 0.11
