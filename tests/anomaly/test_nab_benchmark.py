"""The model on the labelled NAB corpus (../shared/data/nab), if it is there.

A quality guard, not a timing: under leave-one-category-out (bench/nab/loco.py) the model's defaults
keep their held-out NAB standard scores and stay ahead of the previous model on the same protocol.
Skipped where the corpus is not beside the repository.
"""

from __future__ import annotations

import pytest

from bench.nab.loco import CATEGORIES, run_loco
from bench.nab.run import default_data_dir, load_corpus

DATA = default_data_dir()
pytestmark = [
    pytest.mark.skipif(not (DATA / "combined_windows.json").exists(), reason="NAB corpus not present"),
    pytest.mark.slow,
]


def mean(values):
    return sum(values) / len(values)


def test_model_holds_on_the_category_it_was_not_tuned_on():
    corpus, values = load_corpus(DATA, CATEGORIES)
    assert len(corpus) == 30 and sum(len(w) for _, w in corpus.values()) == 55
    model = run_loco("matcarv", corpus, values, grid={})
    previous = run_loco("week_novelty", corpus, values, grid={})
    assert [f.held_out for f in model] == list(CATEGORIES)
    assert mean([f.carried for f in model]) >= 73.0
    assert mean([f.optimised for f in model]) >= 78.0
    assert mean([f.carried for f in model]) > mean([f.carried for f in previous]) + 15
