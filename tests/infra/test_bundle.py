"""The deployment bundle and the trigger Lambda's package, built the way `make bundle` and the synth do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from aiops_infra.bundle import (
    IMPORT_ROOTS,
    LAMBDA_CACHE_TAG,
    LAMBDA_DATA_FILES,
    LAMBDA_MODULES,
    LAMBDA_ROUTE_TABLE,
    LAMBDA_SO_SUFFIX,
    MWAA_PLUGINS_DIR,
    MWAA_WHEEL_TAG,
    build_bundle,
    find_lambda_python,
    find_uv,
    requirement_names,
    requirement_wheels_needed,
)
from aiops_infra.trigger_function import (
    DEPENDENCIES,
    HANDLER,
    PackagingError,
    build_package,
)
from tests.conftest import REPO


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return build_bundle(tmp_path_factory.mktemp("bundle") / "out")


def test_layout(bundle):
    assert sorted(p.name for p in bundle.root.iterdir()) == [
        "dags",
        "plugins.zip",
        "requirements.txt",
        "startup.sh",
    ]
    dag_files = sorted(p.name for p in bundle.dags.iterdir())
    assert dag_files == sorted(p.name for p in (REPO / "dags").iterdir() if p.name != "__pycache__")
    assert bundle.requirements.read_text() == (REPO / "requirements.txt").read_text()
    assert "--constraint" in bundle.requirements.read_text()


def test_plugins_zip_has_the_three_import_roots_at_its_root(bundle):
    with zipfile.ZipFile(bundle.plugins_zip) as archive:
        names = archive.namelist()
    roots = {name.split("/", 1)[0] for name in names if "/" in name}
    assert {name for name in names if "/" not in name and not name.endswith(".whl")} >= {".airflowignore"}
    assert roots == set(IMPORT_ROOTS)
    for root in IMPORT_ROOTS:
        assert f"{root}/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "matcarv_aiops/catalogue/entries/s3_public_access.yaml" in names


def test_plugins_zip_carries_a_wheel_for_every_requirement_for_mwaas_python(bundle, tmp_path):
    """A private webserver has no PyPI: requirements.txt installs from plugins.zip only (MWAA unpacks it
    into /usr/local/airflow/plugins), so each requirement and what it needs beyond MWAA's image has a wheel
    there for CPython 3.12 on manylinux x86_64."""
    from packaging.utils import canonicalize_name, parse_wheel_filename

    lines = [line.strip() for line in bundle.requirements.read_text().splitlines()]
    assert "--no-index" in lines and f"--find-links {MWAA_PLUGINS_DIR}" in lines
    with zipfile.ZipFile(bundle.plugins_zip) as archive:
        wheels = [name for name in archive.namelist() if name.endswith(".whl")]
        archive.extractall(tmp_path / "plugins", members=wheels)
    assert all("/" not in name for name in wheels)  # at the root: /usr/local/airflow/plugins/<wheel>
    shipped = {}
    for name in wheels:
        distribution, version, _, tags = parse_wheel_filename(name)
        assert any(MWAA_WHEEL_TAG.fullmatch(f"{t.interpreter}-{t.abi}-{t.platform}") for t in tags), name
        shipped[canonicalize_name(distribution)] = str(version)
    for requirement in requirement_names(bundle.requirements):
        assert requirement in shipped, f"no wheel for {requirement} in plugins.zip"
    assert shipped == requirement_wheels_needed(bundle.requirements)
    # pip with no index finds every requirement and its dependencies among the wheels, beside what an
    # image like MWAA's (this environment) has: the wheels are reinstalled from the folder, nothing else.
    names = sorted(shipped)
    result = subprocess.run(
        [
            str(find_uv()),
            "pip",
            "install",
            "--dry-run",
            "--python",
            sys.executable,
            "--no-index",
            "--find-links",
            str(tmp_path / "plugins"),
            *[arg for n in names for arg in ("--reinstall-package", n)],
            *[f"{n}=={v}" for n, v in shipped.items()],
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert all(n in result.stderr for n in names), result.stderr


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
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import matcarv_aiops, matcarv_operators, matcarv_sensors;"
        "from matcarv_aiops.catalogue import catalogue;"
        "assert matcarv_aiops.__file__.startswith(sys.argv[1]), matcarv_aiops.__file__;"
        "print(len(catalogue()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(plugins)],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert result.returncode == 0, result.stderr
    from matcarv_aiops.catalogue import catalogue

    assert int(result.stdout) == len(catalogue())


def test_plugins_zip_is_reproducible(bundle, tmp_path):
    again = build_bundle(tmp_path / "again")
    assert again.plugins_zip.read_bytes() == bundle.plugins_zip.read_bytes()


def test_startup_script_exports_the_aiops_section_as_settings(bundle):
    env = {
        "PATH": os.environ["PATH"],
        "AIRFLOW__AIOPS__AUDIT_TABLE": "AuditX",
        "AIRFLOW__AIOPS__SNS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:t",
        "AIRFLOW__AIOPS__PRODUCTION_ACCOUNTS": "111111111111,222222222222",
        "AIRFLOW__CORE__OTHER": "untouched",
    }
    result = subprocess.run(
        ["sh", "-c", f". {bundle.startup_script} && env"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    exported = dict(line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("AIOPS_"))
    assert exported == {
        "AIOPS_AUDIT_TABLE": "AuditX",
        "AIOPS_SNS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:t",
        "AIOPS_PRODUCTION_ACCOUNTS": "111111111111,222222222222",
    }
    from matcarv_aiops.settings import Settings

    settings = Settings.from_env(exported)
    assert settings.platform.audit_table == "AuditX"
    assert settings.safety.production_accounts == ("111111111111", "222222222222")


@pytest.fixture(scope="module")
def lambda_package(tmp_path_factory) -> Path:
    return build_package(tmp_path_factory.mktemp("lambda") / "code")


def test_plugins_zip_and_lambda_carry_no_local_emulator(bundle, lambda_package):
    """The SSM Automation emulator (aiops_local) is a local tool: shipped neither to MWAA nor the Lambda."""
    with zipfile.ZipFile(bundle.plugins_zip) as archive:
        names = archive.namelist()
    shipped = names + [p.relative_to(lambda_package).as_posix() for p in lambda_package.rglob("*")]
    emulator = [
        n for n in shipped if n.startswith("aiops_local") or n.endswith(("/runner.py", "/jsonpath.py"))
    ]
    assert emulator == []
    assert "matcarv_aiops/ssm/service.py" in names  # what MWAA needs of SSM stays


def test_lambda_package_holds_exactly_the_listed_modules(lambda_package):
    core = sorted(
        p.relative_to(lambda_package).as_posix()
        for p in (lambda_package / "matcarv_aiops").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )  # (bytecode: the next test)
    assert core == sorted([*LAMBDA_MODULES, *LAMBDA_DATA_FILES, LAMBDA_ROUTE_TABLE])
    tops = {p.name for p in lambda_package.iterdir()} - {"__pycache__"}
    assert tops == {"matcarv_aiops", "typing_extensions.py"} | set(DEPENDENCIES) - {"typing_extensions"}
    assert not [
        p
        for p in lambda_package.rglob("*")
        if p.name.endswith(".dist-info") or p.name in ("yaml", "pydantic")
    ]
    # The catalogue ships compiled: one row per entry, no YAML.
    rows = json.loads((lambda_package / LAMBDA_ROUTE_TABLE).read_text())
    from matcarv_aiops.catalogue import catalogue

    assert [row["id"] for row in rows] == list(catalogue())
    assert not list(lambda_package.rglob("*.yaml"))


LAMBDA_PYTHON = find_lambda_python()
needs_lambda_python = pytest.mark.skipif(
    LAMBDA_PYTHON is None, reason=f"no {LAMBDA_CACHE_TAG} interpreter on this machine (AIOPS_LAMBDA_PYTHON)"
)


@needs_lambda_python
def test_lambda_package_ships_bytecode_for_the_lambda_runtime(lambda_package):
    for name in LAMBDA_MODULES:
        source = lambda_package / name
        pyc = source.parent / "__pycache__" / f"{source.stem}.{LAMBDA_CACHE_TAG}.pyc"
        assert pyc.is_file(), name
        assert pyc.read_bytes()[4:8] == b"\x01\x00\x00\x00"  # unchecked-hash: valid whatever the zip's mtimes
    tags = {p.name.split(".")[1] for p in lambda_package.rglob("*.pyc")}
    assert tags == {LAMBDA_CACHE_TAG}, tags  # no bytecode of another interpreter


def _elf_machine(path: Path) -> tuple[int, int]:
    """(ELF class, machine) of a shared object: (2, 62) is 64-bit x86-64, (2, 183) aarch64."""
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path.name} is not an ELF shared object"
    return header[4], int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def test_every_compiled_module_matches_the_functions_runtime_and_architecture(synth, lambda_package):
    """Whatever machine builds it, the package's native modules are CPython 3.12 x86_64 Linux ones, as the
    deployed function (runtime, architecture) loads them."""
    _, function = synth.trigger_function()
    runtime, [architecture] = function["Properties"]["Runtime"], function["Properties"]["Architectures"]
    assert (runtime, architecture) == ("python3.12", "x86_64")
    expected_suffix = (
        f".cpython-{runtime.removeprefix('python').replace('.', '')}-{architecture}-linux-gnu.so"
    )
    assert expected_suffix == LAMBDA_SO_SUFFIX
    machine = {"x86_64": 62, "arm64": 183}[architecture]
    compiled = [p for p in lambda_package.rglob("*") if p.suffix in (".so", ".pyd", ".dylib")]
    assert compiled, "expected pydantic_core's native module"
    for path in compiled:
        assert path.name.endswith((expected_suffix, ".abi3.so")), path.name
        assert _elf_machine(path) == (2, machine), path.name
    # The synthesized asset is the package as built, .so included.
    asset = synth.outdir / f"asset.{function['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    assert sorted(p.name for p in asset.rglob("*.so")) == sorted(p.name for p in compiled)


@needs_lambda_python
def test_lambda_handler_runs_from_the_package_alone(lambda_package):
    """In a fresh interpreter without site-packages (boto3 comes with the runtime and is not needed until a
    trigger): the handler imports and handles an event from the package alone, reading the compiled
    catalogue, with no YAML, no catalogue schema, no other models and no Airflow."""
    module, _, function = HANDLER.rpartition(".")
    event = REPO / "tests" / "ingress" / "events" / "cloudwatch_alarm_ok.json"
    code = f"""
import json, sys
sys.path.insert(0, sys.argv[1])
import importlib
handler = getattr(importlib.import_module({module!r}), {function!r})
outcome = handler(json.load(open(sys.argv[2])), None)
assert outcome["matches"] == [], outcome
assert "ec2_status_check_failed: detail.state.value" in outcome["ignored"], outcome
from matcarv_aiops.ingress.routing import route
assert route(json.loads(open(sys.argv[3]).read())).matches
from matcarv_aiops.ingress.trigger_client import client_from_settings
assert type(client_from_settings()).__name__ == "LocalTriggerClient"  # the MWAA one needs the runtime's boto3
roots = ("matcarv_aiops", "pydantic", "pydantic_core", "yaml", "boto3", "airflow")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in roots)
for name in loaded:
    origin = getattr(sys.modules[name], "__file__", None)
    assert origin is None or origin.startswith(sys.argv[1]), (name, origin)
print(json.dumps(loaded))
"""
    alarm = REPO / "tests" / "ingress" / "events" / "cloudwatch_alarm_ec2_status_check.json"
    argv = [LAMBDA_PYTHON, "-I", "-S", "-c", code, str(lambda_package), str(event), str(alarm)]
    result = subprocess.run(
        argv,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ["PATH"], "AIOPS_TRIGGER_BACKEND": "local"},
    )
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    assert {m for m in loaded if m.startswith("matcarv_aiops")} == {
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for name in LAMBDA_MODULES
    }
    # The envelope is validated by pydantic-core: pydantic itself is neither shipped nor imported.
    assert not {m for m in loaded if m.split(".")[0] in ("pydantic", "yaml", "boto3", "airflow")}
    assert "pydantic_core" in loaded


def test_lambda_package_names_a_missing_module(tmp_path, monkeypatch):
    import aiops_infra.bundle as bundle_module

    monkeypatch.setattr(bundle_module, "LAMBDA_MODULES", (*LAMBDA_MODULES, "matcarv_aiops/ingress/gone.py"))
    with pytest.raises(PackagingError, match="module\\(s\\) matcarv_aiops/ingress/gone.py do not exist"):
        build_package(tmp_path / "out")


def test_lambda_package_refuses_a_stale_envelope_schema(tmp_path, monkeypatch):
    """The Lambda validates with the stored schema: one that differs from EventBridgeEvent's is not built."""
    import matcarv_aiops.envelope as envelope_module

    stale = tmp_path / "envelope_schema.json"
    stale.write_text(envelope_module.SCHEMA_FILE.read_text().replace('"min_length": 1', '"min_length": 0'))
    monkeypatch.setattr(envelope_module, "SCHEMA_FILE", stale)
    with pytest.raises(PackagingError, match="is not EventBridgeEvent's current core schema"):
        build_package(tmp_path / "out")
    assert not (tmp_path / "out").exists()


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
    env = {
        **os.environ,
        "PYTHONPATH": str(plugins),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(bundle.dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/airflow.db",
    }
    result = subprocess.run(
        [sys.executable, "-c", code, str(bundle.dags), str(plugins)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    from matcarv_aiops.catalogue import catalogue

    dag_ids = set(result.stdout.split())
    assert {entry.dag_id for entry in catalogue().values()} <= dag_ids
    assert "approve_remediation" in dag_ids
