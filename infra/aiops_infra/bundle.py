"""Build the MWAA deployment bundle: what goes into the source bucket.

    build/bundle/
      dags/              the DAG files (and .airflowignore), as MWAA syncs them
      plugins.zip        matcarv_aiops, matcarv_operators, matcarv_sensors (and any Airflow plugin
                         module in plugins/) at the root of the zip, as MWAA unpacks it onto sys.path,
                         with an .airflowignore that keeps Airflow from exec'ing them as plugin files
      requirements.txt   what MWAA installs on top of its image, with the constraint line
      startup.sh         exports the AIOPS_* settings the stack passes as `aiops.*` configuration options

``python -m aiops_infra.bundle [OUT_DIR]`` (``make bundle``) prints the layout as JSON. The zip is
reproducible (sorted entries, fixed timestamps): the same sources give the same bytes.

Neither this bundle nor the trigger Lambda's package (``build_lambda_package``, below) carries the local
emulator (``aiops_local``, in ``local/``): it is a tool of the local stack and the tests.

The trigger Lambda's package is built from an explicit list (``LAMBDA_MODULES``): the handler and exactly
the core modules it imports (ingress, the envelope, settings), the envelope's core schema
(``LAMBDA_DATA_FILES``; the package is not built from a stale one), the catalogue compiled to
``matcarv_aiops/ingress/route_table.json`` (so a cold start reads no YAML and validates no entry), and its
dependencies (``LAMBDA_DEPENDENCIES``: pydantic-core, not pydantic) at this environment's versions,
installed by uv as wheels for the function's runtime and architecture (CPython 3.12, manylinux2014
x86_64), whatever machine builds it: from uv's cache when it has them, else from PyPI. Their bytecode
(unchecked-hash .pyc files: the Lambda's file system is read-only, so without them every cold start
compiles every module) is compiled only by a CPython 3.12 found on this machine; without one the package
ships source only. boto3 comes with the Lambda runtime.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "build" / "bundle"
# import root -> the folder that holds it
IMPORT_ROOTS = {
    "matcarv_aiops": REPO / "plugins" / "matcarv_aiops",
    "matcarv_operators": REPO / "operators" / "matcarv_operators",
    "matcarv_sensors": REPO / "sensors" / "matcarv_sensors",
}
STARTUP_SCRIPT = Path(__file__).with_name("startup.sh")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", "tests"}


@dataclass(frozen=True)
class Bundle:
    root: Path
    dags: Path
    plugins_zip: Path
    requirements: Path
    startup_script: Path

    def as_dict(self) -> dict[str, str]:
        return {key: str(value) for key, value in asdict(self).items()}


def _files(directory: Path) -> list[Path]:
    return sorted(
        path
        for path in directory.rglob("*")
        if path.is_file()
        and path.suffix != ".pyc"
        and not _EXCLUDED_DIRS.intersection(path.relative_to(directory).parts)
    )


def _add(archive: zipfile.ZipFile, path: Path, name: str) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, path.read_bytes())


# What MWAA's Airflow 3.3.1 image already has (DESIGN: Airflow, the Amazon and standard providers, and so
# everything they depend on); requirements.txt adds the rest, installed from wheels in plugins.zip.
MWAA_PROVIDED = ("apache-airflow", "apache-airflow-providers-amazon", "apache-airflow-providers-standard")
MWAA_PLUGINS_DIR = "/usr/local/airflow/plugins"  # where MWAA unpacks plugins.zip
# The wheels are for MWAA's Python and platform, whatever machine builds the bundle.
MWAA_PYTHON_VERSION = "3.12"
MWAA_WHEEL_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
MWAA_WHEEL_TAG = re.compile(r"(cp312-cp312|cp3\d+-abi3|py3-none|py2\.py3-none)-(manylinux\S*_x86_64|any)")
WHEEL_CACHE = Path(os.environ.get("AIOPS_WHEEL_CACHE", REPO / "build" / "wheels"))


def requirement_names(requirements: Path = REPO / "requirements.txt") -> list[str]:
    """The distributions requirements.txt asks for (options and comments skipped), canonical names."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    names = []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            names.append(canonicalize_name(Requirement(line).name))
    return names


def _closure(names: Iterable[str]) -> dict[str, str]:
    """Every distribution ``names`` need, with the version installed here (markers as on MWAA: CPython
    3.12 on Linux, no extras)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    marker_env = {
        "python_version": MWAA_PYTHON_VERSION,
        "python_full_version": f"{MWAA_PYTHON_VERSION}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }
    found: dict[str, str] = {}
    todo = [canonicalize_name(name) for name in names]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            raise PackagingError(f"{name} is not installed in this environment (run `uv sync`)") from None
        for raw in importlib.metadata.requires(name) or []:
            requirement = Requirement(raw)
            if requirement.marker is None or requirement.marker.evaluate(marker_env):
                todo.append(canonicalize_name(requirement.name))
    return found


def requirement_wheels_needed(requirements: Path = REPO / "requirements.txt") -> dict[str, str]:
    """What requirements.txt adds to MWAA's image, at this environment's (uv.lock's) versions."""
    provided = _closure(MWAA_PROVIDED)
    return {
        name: version
        for name, version in sorted(_closure(requirement_names(requirements)).items())
        if name not in provided
    }


def download_wheels(pins: dict[str, str], cache: Path = WHEEL_CACHE) -> list[Path]:
    """The wheel of each pinned distribution for MWAA's CPython 3.12 on manylinux x86_64: from ``cache``,
    downloaded from PyPI (pip download, binary only) into it when missing."""
    from packaging.utils import canonicalize_name, parse_wheel_filename

    cache.mkdir(parents=True, exist_ok=True)

    def cached() -> dict[tuple[str, str], Path]:
        wheels = {}
        for path in cache.glob("*.whl"):
            name, version, _, tags = parse_wheel_filename(path.name)
            if any(MWAA_WHEEL_TAG.fullmatch(f"{t.interpreter}-{t.abi}-{t.platform}") for t in tags):
                wheels[(canonicalize_name(name), str(version))] = path
        return wheels

    missing = [f"{name}=={version}" for name, version in pins.items() if (name, version) not in cached()]
    if missing:
        pip = (
            [sys.executable, "-m", "pip"]
            if importlib.util.find_spec("pip")
            else [str(REPO / ".tools" / "bin" / "pip")]
        )
        command = [
            *pip,
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--no-deps",
            "--python-version",
            MWAA_PYTHON_VERSION,
            "--implementation",
            "cp",
            *[arg for platform in MWAA_WHEEL_PLATFORMS for arg in ("--platform", platform)],
            "--dest",
            str(cache),
            *missing,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise PackagingError(
                f"cannot download wheels {missing} for MWAA (CPython {MWAA_PYTHON_VERSION}, "
                f"manylinux x86_64): {result.stderr.strip()[-1500:]}"
            )
    wheels = cached()
    absent = [f"{name}=={version}" for name, version in pins.items() if (name, version) not in wheels]
    if absent:
        raise PackagingError(
            f"no wheel for MWAA (CPython {MWAA_PYTHON_VERSION}, manylinux x86_64) of {absent}"
        )
    return [wheels[(name, version)] for name, version in pins.items()]


def build_plugins_zip(target: Path, wheels: Iterable[Path] = ()) -> Path:
    for name, folder in IMPORT_ROOTS.items():
        if not (folder / "__init__.py").is_file():
            raise FileNotFoundError(f"import root {name} has no {folder / '__init__.py'}")
    with zipfile.ZipFile(target, "w") as archive:
        for name, folder in IMPORT_ROOTS.items():
            for path in _files(folder):
                _add(archive, path, f"{name}/{path.relative_to(folder).as_posix()}")
        # Airflow plugin modules (AirflowPlugin subclasses) live at the top of plugins/.
        for path in sorted((REPO / "plugins").glob("*.py")):
            _add(archive, path, path.name)
        # requirements.txt installs these with --no-index --find-links /usr/local/airflow/plugins.
        for wheel in sorted(wheels, key=lambda path: path.name):
            _add(archive, wheel, wheel.name)
        info = zipfile.ZipInfo(".airflowignore", date_time=_ZIP_TIME)
        info.external_attr = 0o644 << 16
        archive.writestr(info, plugins_airflowignore())
    return target


def plugins_airflowignore() -> str:
    """plugins/.airflowignore, extended to every import root: on MWAA all three sit in the plugins folder,
    and Airflow must import them as packages, never exec their modules as plugin files."""
    source = REPO / "plugins" / ".airflowignore"
    text = source.read_text(encoding="utf-8") if source.is_file() else ""
    lines = text.splitlines()
    missing = [f"{root}/" for root in IMPORT_ROOTS if f"{root}/" not in {line.strip() for line in lines}]
    return "\n".join(lines + missing) + "\n"


def build_bundle(out_dir: Path = DEFAULT_OUT) -> Bundle:
    """Write the bundle to ``out_dir`` (emptied first)."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    dags = out_dir / "dags"
    dags.mkdir()
    for path in _files(REPO / "dags"):
        destination = dags / path.relative_to(REPO / "dags")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
    requirements = out_dir / "requirements.txt"
    shutil.copy2(REPO / "requirements.txt", requirements)
    startup = out_dir / "startup.sh"
    shutil.copy2(STARTUP_SCRIPT, startup)
    startup.chmod(0o755)
    wheels = download_wheels(requirement_wheels_needed(REPO / "requirements.txt"))
    return Bundle(
        root=out_dir,
        dags=dags,
        plugins_zip=build_plugins_zip(out_dir / "plugins.zip", wheels),
        requirements=requirements,
        startup_script=startup,
    )


CORE = IMPORT_ROOTS["matcarv_aiops"]
LAMBDA_HANDLER = "matcarv_aiops.ingress.handler.handler"
# Every core module the handler imports, and nothing else (tests/infra checks the package holds exactly
# these and that the handler runs from them alone).
LAMBDA_MODULES = (
    "matcarv_aiops/__init__.py",
    "matcarv_aiops/envelope.py",  # the EventBridge envelope, validated with pydantic-core alone
    "matcarv_aiops/settings.py",
    "matcarv_aiops/ingress/__init__.py",
    "matcarv_aiops/ingress/handler.py",
    "matcarv_aiops/ingress/patterns.py",
    "matcarv_aiops/ingress/redrive.py",
    "matcarv_aiops/ingress/route_table.py",
    "matcarv_aiops/ingress/routing.py",
    "matcarv_aiops/ingress/trigger_client.py",
)
# Data the modules read, copied as they are: the core schema envelope.py validates with.
LAMBDA_DATA_FILES = ("matcarv_aiops/envelope_schema.json",)
LAMBDA_ROUTE_TABLE = "matcarv_aiops/ingress/route_table.json"  # the catalogue, compiled
# Top-level modules and packages the handler needs beyond the standard library and boto3: pydantic-core
# and what it imports, not pydantic, whose import alone would exceed the cold-start budget.
LAMBDA_DEPENDENCIES = ("pydantic_core", "typing_extensions")
# Their distributions, installed at the versions this environment has (uv.lock's).
LAMBDA_DISTRIBUTIONS = ("pydantic-core", "typing-extensions")
# The function's runtime and architecture (trigger_function uses these): MWAA's Python, on x86_64.
LAMBDA_PYTHON_VERSION = "3.12"
LAMBDA_ARCHITECTURE = "x86_64"
LAMBDA_PLATFORM = (
    "x86_64-manylinux2014"  # uv's name for manylinux2014_x86_64 (glibc 2.17; the runtime has 2.34)
)
LAMBDA_CACHE_TAG = "cpython-312"  # bytecode of any other interpreter is not shipped
LAMBDA_SO_SUFFIX = ".cpython-312-x86_64-linux-gnu.so"
# Wheel tags the runtime can load: CPython 3.12 (or abi3, or pure Python), manylinux on x86_64.
_LAMBDA_WHEEL_TAG = re.compile(r"(cp312-cp312|cp3\d+-abi3|py3-none)-(manylinux\S*_x86_64|any)")


class PackagingError(RuntimeError):
    """The Lambda package cannot be built; the message says what is missing."""


def find_uv() -> str:
    """uv: $AIOPS_UV, the one `make` installs into .tools/, or on PATH."""
    for candidate in (os.environ.get("AIOPS_UV"), str(REPO / ".tools" / "bin" / "uv"), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise PackagingError(
        "uv is needed to install the Lambda's dependencies for its platform (run `make install`)"
    )


def find_lambda_python() -> str | None:
    """A CPython 3.12 on this machine, to compile the package's bytecode as the runtime would; or None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [
        os.environ.get("AIOPS_LAMBDA_PYTHON"),
        sys.executable,
        shutil.which("python3.12"),
        *map(str, sorted(pyenv.glob(f"{LAMBDA_PYTHON_VERSION}.*/bin/python{LAMBDA_PYTHON_VERSION}"))),
    ]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            tag = subprocess.run(
                [candidate, "-c", "import sys; print(sys.implementation.cache_tag)"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if tag == LAMBDA_CACHE_TAG:
            return candidate
    return None


def install_for_lambda(target: Path, requirements: Iterable[str]) -> None:
    """Install ``requirements`` (exact pins) as wheels built for the Lambda's platform and Python, whatever
    this machine is: from uv's cache when it has them, else from PyPI."""
    base = [
        find_uv(),
        "pip",
        "install",
        "--quiet",
        "--target",
        str(target),
        "--python-platform",
        LAMBDA_PLATFORM,
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        "--only-binary",
        ":all:",
        "--no-deps",
        *requirements,
    ]
    failures = []
    for extra in (["--offline"], []):  # the cache first: a synth needs no network once it has run
        result = subprocess.run([*base, *extra], capture_output=True, text=True, timeout=300)
        if result.returncode == 0:
            break
        failures.append(result.stderr.strip()[-1500:])
    else:
        raise PackagingError(
            "cannot install the Lambda's dependencies for "
            f"{LAMBDA_PLATFORM} / Python {LAMBDA_PYTHON_VERSION}: {failures[-1]}"
        )
    for wheel in target.glob("*.dist-info/WHEEL"):
        tags = [
            line.split(":", 1)[1].strip()
            for line in wheel.read_text().splitlines()
            if line.startswith("Tag:")
        ]
        if not any(_LAMBDA_WHEEL_TAG.fullmatch(tag) for tag in tags):
            raise PackagingError(
                f"{wheel.parent.name}: wheel tags {tags} do not run on the Lambda's "
                f"CPython {LAMBDA_PYTHON_VERSION} {LAMBDA_ARCHITECTURE}"
            )


def build_lambda_package(out_dir: Path) -> Path:
    """Write the trigger Lambda's code to ``out_dir`` (emptied first) and return it."""
    out_dir = Path(out_dir)
    missing = [name for name in LAMBDA_MODULES if not (CORE.parent / name).is_file()]
    if missing:
        raise PackagingError(
            f"the trigger Lambda's module(s) {', '.join(missing)} do not exist under {CORE.parent}"
        )
    from matcarv_aiops.envelope import SCHEMA_FILE
    from matcarv_aiops.events import envelope_schema_text

    if not SCHEMA_FILE.is_file() or SCHEMA_FILE.read_text(encoding="utf-8") != envelope_schema_text():
        raise PackagingError(
            f"{SCHEMA_FILE} is not EventBridgeEvent's current core schema: the Lambda would validate events "
            "differently from the model (write it with `python -m matcarv_aiops.events`)"
        )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    for name in (*LAMBDA_MODULES, *LAMBDA_DATA_FILES):
        destination = out_dir / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CORE.parent / name, destination)
    from matcarv_aiops.ingress.route_table import compile_route_table

    compile_route_table(out_dir / LAMBDA_ROUTE_TABLE)
    pins = []
    for distribution in LAMBDA_DISTRIBUTIONS:
        try:
            pins.append(f"{distribution}=={importlib.metadata.version(distribution)}")
        except importlib.metadata.PackageNotFoundError:
            raise PackagingError(
                f"dependency {distribution!r} is not installed in this environment "
                "(run `uv sync`): its version is the one the Lambda gets"
            ) from None
    with tempfile.TemporaryDirectory(prefix="aiops-lambda-deps-") as staging:
        install_for_lambda(Path(staging), pins)
        for name in LAMBDA_DEPENDENCIES:  # the import roots only: no metadata, scripts or uv's lock file
            found = [p for p in (Path(staging) / name, Path(staging) / f"{name}.py") if p.exists()]
            if not found:
                raise PackagingError(f"installing {pins} gave no module {name!r}")
            if found[0].is_dir():
                shutil.copytree(
                    found[0], out_dir / found[0].name, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copyfile(found[0], out_dir / found[0].name)
    python = find_lambda_python()
    if python:
        # Unchecked-hash .pyc: valid whatever the zip's timestamps (the Lambda's file system is read-only).
        subprocess.run(
            [python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(out_dir)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return out_dir


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        print("usage: python -m aiops_infra.bundle [OUT_DIR]", file=sys.stderr)
        return 2
    bundle = build_bundle(Path(args[0]) if args else DEFAULT_OUT)
    print(json.dumps(bundle.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
