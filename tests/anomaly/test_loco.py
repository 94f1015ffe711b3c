"""The leave-one-category-out protocol (bench/nab/loco.py) on a corpus small enough to reason about."""

from __future__ import annotations

import random

import pytest

from bench.nab.loco import best_mean_threshold, category_rows, run_loco
from bench.nab.nab_score import PROFILES, score_at_threshold

STANDARD = PROFILES["standard"]
CATS = ("alpha", "beta", "gamma")


def tiny_corpus(seed=1, spike=8.0, cats=CATS):
    """Two files per category, 400 points each, one window around a spike at point 300."""
    rng = random.Random(seed)
    corpus, values = {}, {}
    for cat in cats:
        for k in range(2):
            name = f"{cat}/f{k}.csv"
            timestamps = [f"t{i:04d}" for i in range(400)]
            series = [10 + rng.gauss(0, 1) for _ in range(400)]
            series[300] += spike
            corpus[name] = (timestamps, [("t0290", "t0320")])
            values[name] = series
    return corpus, values


def test_every_category_is_held_out_once_and_scored_at_the_training_threshold():
    corpus, values = tiny_corpus()
    grid = {"window": (20, 100)}
    folds = run_loco("windowed_gaussian", corpus, values, grid=grid, categories=CATS)
    assert [f.held_out for f in folds] == list(CATS)
    for fold in folds:
        assert fold.params in ({"window": 20}, {"window": 100})
        assert 0.0 < fold.threshold < 1.0
        assert fold.carried <= fold.optimised + 1e-9  # NAB's own threshold is optimal on the held-out set


def test_the_held_out_category_does_not_influence_the_choice():
    corpus, values = tiny_corpus()
    grid = {"window": (20, 100)}
    before = run_loco("windowed_gaussian", corpus, values, grid=grid, categories=CATS)
    # Wreck the held-out category gamma: its fold must choose the same parameters and threshold.
    for name in values:
        if name.startswith("gamma/"):
            values[name] = [v * 7 + (50 if i % 13 == 0 else 0) for i, v in enumerate(values[name])]
    after = run_loco("windowed_gaussian", corpus, values, grid=grid, categories=CATS)
    assert (after[2].params, after[2].threshold, after[2].train_mean) == (
        before[2].params,
        before[2].threshold,
        before[2].train_mean,
    )
    assert after[2].optimised != before[2].optimised  # the held-out data did change
    # ... while the folds that train on gamma may change: the protocol really trains on it.
    assert (after[0].train_mean, after[1].train_mean) != (before[0].train_mean, before[1].train_mean)


def test_best_mean_threshold_equals_a_brute_force_sweep():
    corpus, values = tiny_corpus(seed=4, spike=3.0)
    rng = random.Random(9)
    scores = {name: [rng.random() for _ in series] for name, series in values.items()}
    parts = [category_rows(corpus, scores, cat, STANDARD) for cat in CATS[:2]]
    threshold, best = best_mean_threshold(parts, STANDARD)
    candidates = sorted({row.anomaly_score for part in parts for row in part.rows} | {1.1})

    def mean_at(t):
        return sum(p.normalised(score_at_threshold(p.rows, t, STANDARD).score) for p in parts) / len(parts)

    brute = max(mean_at(t) for t in candidates)
    assert best == pytest.approx(brute)
    assert mean_at(threshold) == pytest.approx(best)
