"""How much the model's NAB score depends on its parameters, and on which files they were chosen.

    .venv/bin/python bench/nab/sensitivity.py

The defaults were chosen by looking at scores on this same corpus (there is no held-out set), so the
headline score is optimistic. This prints every variant that was tried, on the whole corpus and on
two halves of it (alternate files), so the spread is visible: a parameter set that is best on one
half is not the best on the other.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from matcarv_aiops.anomaly import make_detector  # noqa: E402

from bench.nab.nab_score import score_detector  # noqa: E402
from bench.nab.run import default_data_dir, load_corpus  # noqa: E402

GRID = {"signed": (True, False), "window": (144, 288, 576), "short": (6, 12, 24)}


def main() -> int:
    corpus, values = load_corpus(default_data_dir())
    names = sorted(corpus)
    halves = {"A": names[0::2], "B": names[1::2]}
    print("| signed | window | short | all 17 | half A | half B | TP | FP | FN |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for combo in itertools.product(*GRID.values()):
        params = dict(zip(GRID, combo, strict=True))
        detector = make_detector("matcarv", **params)
        scores = {name: detector.score_series(series)[0] for name, series in values.items()}
        whole = score_detector("matcarv", corpus, scores)
        parts = [score_detector("matcarv", {n: corpus[n] for n in half}, {n: scores[n] for n in half}).score
                 for half in halves.values()]
        print(f"| {params['signed']} | {params['window']} | {params['short']} | {whole.score:.1f} "
              f"| {parts[0]:.1f} | {parts[1]:.1f} | {whole.tp} | {whole.fp} | {whole.fn} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
