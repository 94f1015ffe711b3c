"""How the model's leave-one-category-out (LOCO) NAB score moves with its parameters.

    .venv/bin/python bench/nab/sensitivity.py

The defaults were chosen while looking at these LOCO figures over all three labelled categories, so
the design saw every category (the protocol's grid search then sees only the training two). This
prints the variants tried, one parameter changed from the defaults at a time, so the spread is
visible: each held-out category's score at the threshold carried from the other two, NAB's own
threshold optimisation on it, and the mean of both.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from bench.nab.loco import CATEGORIES, run_loco  # noqa: E402
from bench.nab.run import default_data_dir, load_corpus  # noqa: E402

VARIANTS: list[dict] = [
    {},
    {"seasonal": False},
    {"window": 144},
    {"shorts": (6,)},
    {"shorts": (12,)},
    {"shorts": (3, 12)},
    {"shorts": (6, 24)},
    {"blocks": 14},
    {"min_blocks": 3, "season_min_blocks": 3},
    {"spread_floor": 0.3},
    {"record_gate": False},
    {"min_deviation": 0.0},
    {"rest": 0},
    {"rest": 144},
    {"rest_margin": 3.0},
    {"min_gap": 0},
    {"min_gap": 12},
    {"min_gap": 96},
    {"gap_score": 0.72},
]


def main() -> int:
    corpus, values = load_corpus(default_data_dir(), CATEGORIES)
    heads = " | ".join(f"{c} carried / NAB-opt" for c in CATEGORIES)
    print(f"| change from the defaults | {heads} | mean carried | mean NAB-opt |")
    print("| --- | " + " | ".join("---" for _ in CATEGORIES) + " | --- | --- |")
    for variant in VARIANTS:
        folds = run_loco("matcarv", corpus, values, grid={key: (value,) for key, value in variant.items()})
        cells = " | ".join(f"{f.carried:.1f} / {f.optimised:.1f}" for f in folds)
        carried = sum(f.carried for f in folds) / len(folds)
        optimised = sum(f.optimised for f in folds) / len(folds)
        label = variant or "none (the defaults)"
        print(f"| {label} | {cells} | {carried:.1f} | {optimised:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
