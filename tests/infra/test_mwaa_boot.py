"""Boot as MWAA boots, from the built bundle alone (aws/amazon-mwaa-docker-images: the entrypoint passes the
environment's AirflowConfigurationOptions as AIRFLOW__<SECTION>__<KEY>, runs the startup script with
/bin/bash and keeps the environment it leaves; plugins.zip is unpacked into the plugins folder, which is
on sys.path). Here: plugins.zip into an empty folder, the synthesized template's options exported, startup.sh
sourced by bash and its environment captured; then, in a fresh interpreter with only that environment and no
repository path on sys.path, the DAGs are parsed and the settings loaded."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from typing import Any

import pytest

from aiops_infra.bundle import build_bundle
from tests.conftest import REPO

REGION, ACCOUNT = "eu-west-1", "123456789012"


def _resolved(value: Any) -> str:
    """What CloudFormation puts in an option at deploy time, for a value the template resolves then."""
    if isinstance(value, str):
        return value
    ((kind, arg),) = value.items()
    if kind == "Ref":
        return {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT}.get(arg, f"resolved-{arg}")
    return f"arn:aws:sns:{REGION}:{ACCOUNT}:resolved-{kind.removeprefix('Fn::')}"


@pytest.fixture(scope="module")
def booted(synth, tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("mwaa")
    bundle = build_bundle(root / "bundle")
    plugins = root / "plugins"
    plugins.mkdir()
    with zipfile.ZipFile(bundle.plugins_zip) as archive:
        archive.extractall(plugins)
    [environment] = synth.resources("AIOps", "AWS::MWAA::Environment").values()
    options = {
        key: _resolved(value)
        for key, value in environment["Properties"]["AirflowConfigurationOptions"].items()
    }
    exported = {
        "AIRFLOW__" + "__".join(part.upper() for part in key.split(".", 1)): value
        for key, value in options.items()
    }
    base = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(root),
        "AIRFLOW_HOME": str(root / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(bundle.dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(plugins),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root}/airflow.db",
        "AWS_DEFAULT_REGION": REGION,
    }
    sourced = subprocess.run(
        ["/bin/bash", "-c", f'source "{bundle.startup_script}" && env -0'],
        env={**base, **exported},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
    )
    assert sourced.returncode == 0, sourced.stderr
    env = dict(item.split("=", 1) for item in sourced.stdout.split("\0") if "=" in item)
    code = """
import json, sys
repo = sys.argv[1]
def in_repo(path):  # the repository's sources (its .venv is the image's Airflow, not the repository)
    return path.startswith(repo) and not path.startswith(sys.prefix)
sys.path[:] = [p for p in sys.path if p and not in_repo(p)]  # no repository: the bundle only
from airflow.configuration import conf
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=conf.get("core", "dags_folder"))
from matcarv_aiops.settings import Settings
settings = Settings.from_env()
from_repo = sorted(n for n, m in list(sys.modules.items())
                   if in_repo(getattr(m, "__file__", None) or ""))
print(json.dumps({"errors": {k: str(v)[-500:] for k, v in bag.import_errors.items()},
                  "dag_ids": sorted(bag.dag_ids),
                  "settings": settings.as_flat(), "from_repo": from_repo,
                  "airflow_conf": {o: conf.get(*o.split(".", 1)) for o in json.loads(sys.argv[2])}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", code, str(REPO), json.dumps(sorted(options))],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {"options": options, "env": env, **json.loads(result.stdout.strip().splitlines()[-1])}


def test_every_dag_parses_from_the_bundle_alone(booted):
    assert booted["errors"] == {}
    from matcarv_aiops.catalogue import catalogue

    assert {entry.dag_id for entry in catalogue().values()} | {"approve_remediation"} <= set(
        booted["dag_ids"]
    )
    assert booted["from_repo"] == []


def test_every_option_reaches_airflow_and_every_aiops_setting_resolves(booted):
    from matcarv_aiops.settings import Settings

    # Airflow reads every option as MWAA passes it (AIRFLOW__<SECTION>__<KEY>).
    assert booted["airflow_conf"] == booted["options"]
    assert booted["airflow_conf"]["core.dags_are_paused_at_creation"] == "False"
    aiops = {
        key.removeprefix("aiops."): value
        for key, value in booted["options"].items()
        if key.startswith("aiops.")
    }
    assert {"audit_table", "sns_topic_arn", "mwaa_environment_name"} <= set(aiops)
    for name, value in aiops.items():
        assert name in Settings.names(), f"aiops.{name} is no setting"
        assert booted["env"][f"AIOPS_{name.upper()}"] == value  # exported by startup.sh
        resolved = booted["settings"][name]
        assert (",".join(resolved) if isinstance(resolved, list) else str(resolved)) == value, name
