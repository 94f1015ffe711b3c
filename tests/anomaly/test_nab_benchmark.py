"""The model on the labelled NAB CloudWatch corpus (../shared/data/nab), if it is there.

A quality guard, not a timing: the model keeps its NAB standard score and stays ahead of both
baselines. Skipped where the corpus is not beside the repository.
"""

from __future__ import annotations

import pytest

from bench.nab.run import default_data_dir, evaluate, load_corpus

DATA = default_data_dir()
pytestmark = pytest.mark.skipif(not (DATA / "combined_windows.json").exists(), reason="NAB corpus not present")


def test_model_scores_70_and_beats_both_baselines():
    corpus, values = load_corpus(DATA, ["realAWSCloudwatch"])
    assert len(corpus) == 17 and sum(len(w) for _, w in corpus.values()) == 30
    model, _ = evaluate("matcarv", corpus, values)
    gaussian, _ = evaluate("windowed_gaussian", corpus, values)
    robust, _ = evaluate("rolling_median_mad", corpus, values)
    assert model.score >= 70.0
    assert model.score > gaussian.score and model.score > robust.score
