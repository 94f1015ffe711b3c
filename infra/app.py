#!/usr/bin/env python3
"""CDK entry point: the cdk CLI runs it (cdk.json), and so does ``make synth`` (no CLI needed), which
writes the templates to infra/cdk.out with the context defaults of cdk.json."""

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from aiops_infra.app import build_app  # noqa: E402

if __name__ == "__main__":
    # Without the CLI, read cdk.json's context and write where the CLI would.
    context = (
        {} if "CDK_CONTEXT_JSON" in os.environ else json.loads((HERE / "cdk.json").read_text())["context"]
    )
    build_app(outdir=os.environ.get("CDK_OUTDIR", HERE / "cdk.out"), context=context).synth()
