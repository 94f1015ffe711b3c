"""The deployment bundle and the trigger Lambda's package, built the way `make bundle` and the synth do."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from aiops_infra.bundle import IMPORT_ROOTS, build_bundle
from aiops_infra.trigger_function import DEPENDENCIES, HANDLER, PackagingError, build_package
from tests.conftest import REPO


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return build_bundle(tmp_path_factory.mktemp("bundle") / "out")


def test_layout(bundle):
    assert sorted(p.name for p in bundle.root.iterdir()) == ["dags", "plugins.zip", "requirements.txt", "startup.sh"]
    dag_files = sorted(p.name for p in bundle.dags.iterdir())
    assert dag_files == sorted(p.name for p in (REPO / "dags").iterdir() if p.name != "__pycache__")
    assert bundle.requirements.read_text() == (REPO / "requirements.txt").read_text()
    assert "--constraint" in bundle.requirements.read_text()


def test_plugins_zip_has_the_three_import_roots_at_its_root(bundle):
    with zipfile.ZipFile(bundle.plugins_zip) as archive:
        names = archive.namelist()
    roots = {name.split("/", 1)[0] for name in names if "/" in name}
    assert roots == set(IMPORT_ROOTS)
    for root in IMPORT_ROOTS:
        assert f"{root}/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "matcarv_aiops/catalogue/entries/s3_public_access.yaml" in names


def test_plugins_zip_keeps_airflow_from_executing_the_packages_as_plugin_files(bundle):
    with zipfile.ZipFile(bundle.plugins_zip) as archive:
        ignored = {line.strip() for line in archive.read(".airflowignore").decode().splitlines()}
    assert {f"{root}/" for root in IMPORT_ROOTS} <= ignored


def test_plugins_zip_imports_once_unpacked(bundle, tmp_path):
    """MWAA unpacks plugins.zip into its plugins folder and puts that on sys.path: the core, its catalogue
    data and the other import roots load from there alone."""
    plugins = tmp_path / "plugins"
    with zipfile.ZipFile(bundle.plugins_zip) as archive:
        archive.extractall(plugins)
    code = ("import sys; sys.path.insert(0, sys.argv[1]);"
            "import matcarv_aiops, matcarv_operators, matcarv_sensors;"
            "from matcarv_aiops.catalogue import catalogue;"
            "assert matcarv_aiops.__file__.startswith(sys.argv[1]), matcarv_aiops.__file__;"
            "print(len(catalogue()))")
    result = subprocess.run([sys.executable, "-c", code, str(plugins)], cwd="/",
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr
    from matcarv_aiops.catalogue import catalogue

    assert int(result.stdout) == len(catalogue())


def test_plugins_zip_is_reproducible(bundle, tmp_path):
    again = build_bundle(tmp_path / "again")
    assert again.plugins_zip.read_bytes() == bundle.plugins_zip.read_bytes()


def test_startup_script_exports_the_aiops_section_as_settings(bundle):
    env = {"PATH": os.environ["PATH"], "AIRFLOW__AIOPS__AUDIT_TABLE": "AuditX",
           "AIRFLOW__AIOPS__SNS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:t",
           "AIRFLOW__AIOPS__PRODUCTION_ACCOUNTS": "111111111111,222222222222",
           "AIRFLOW__CORE__OTHER": "untouched"}
    result = subprocess.run(["sh", "-c", f". {bundle.startup_script} && env"], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    exported = dict(line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("AIOPS_"))
    assert exported == {"AIOPS_AUDIT_TABLE": "AuditX", "AIOPS_SNS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:t",
                        "AIOPS_PRODUCTION_ACCOUNTS": "111111111111,222222222222"}
    from matcarv_aiops.settings import Settings

    settings = Settings.from_env(exported)
    assert settings.audit_table == "AuditX"
    assert settings.production_accounts == ("111111111111", "222222222222")


@pytest.fixture(scope="module")
def lambda_package(tmp_path_factory) -> Path:
    return build_package(tmp_path_factory.mktemp("lambda") / "code")


def test_lambda_package_has_no_airflow(lambda_package):
    for path in lambda_package.rglob("*.py"):
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.is_relative_to(lambda_package / "matcarv_aiops"):
            assert "import airflow" not in text and "from airflow" not in text, path
    assert not (lambda_package / "airflow").exists()
    assert {p.name for p in lambda_package.iterdir()} >= {"matcarv_aiops", "pydantic", "pydantic_core", "yaml"}
    assert len(DEPENDENCIES) == 6


def test_lambda_handler_imports_from_the_package_alone(lambda_package):
    """The handler and everything it imports load from the package (boto3 comes with the runtime)."""
    module, _, function = HANDLER.rpartition(".")
    code = ("import sys; sys.path.insert(0, sys.argv[1]);"
            f"import importlib; m = importlib.import_module({module!r}); assert callable(m.{function});"
            "import pydantic, yaml;"
            "assert pydantic.__file__.startswith(sys.argv[1]) and yaml.__file__.startswith(sys.argv[1]);"
            "assert not [n for n in sys.modules if n == 'airflow' or n.startswith('airflow.')]")
    result = subprocess.run([sys.executable, "-c", code, str(lambda_package)], cwd="/", capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr


def test_lambda_package_needs_the_handler(tmp_path, monkeypatch):
    import aiops_infra.trigger_function as trigger_function

    monkeypatch.setattr(trigger_function, "CORE_PACKAGE", tmp_path / "matcarv_aiops")
    (tmp_path / "matcarv_aiops").mkdir()
    with pytest.raises(PackagingError, match="ingress/handler.py does not exist"):
        build_package(tmp_path / "out")


def test_every_dag_imports_from_the_bundle(bundle, tmp_path):
    """As MWAA runs it: plugins.zip unpacked into the plugins folder, dags/ as the DAGs folder, both ahead
    of anything installed. Every DAG parses, and the core comes from the bundle."""
    plugins = tmp_path / "plugins"
    with zipfile.ZipFile(bundle.plugins_zip) as archive:
        archive.extractall(plugins)
    code = """
import sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
import matcarv_aiops
assert matcarv_aiops.__file__.startswith(sys.argv[2]), matcarv_aiops.__file__
print(" ".join(sorted(bag.dag_ids)))
"""
    env = {**os.environ, "PYTHONPATH": str(plugins), "AIRFLOW_HOME": str(tmp_path / "airflow"),
           "AIRFLOW__CORE__DAGS_FOLDER": str(bundle.dags), "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/airflow.db"}
    result = subprocess.run([sys.executable, "-c", code, str(bundle.dags), str(plugins)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    from matcarv_aiops.catalogue import catalogue

    dag_ids = set(result.stdout.split())
    assert {entry.dag_id for entry in catalogue().values()} <= dag_ids
    assert "approve_remediation" in dag_ids
