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
the core modules it imports (ingress, the envelope of the models, settings), the catalogue compiled to
``matcarv_aiops/ingress/route_table.json`` (so a cold start reads no YAML and validates no entry), the
pure-Python dependencies (``LAMBDA_DEPENDENCIES``, copied from this environment: CPython 3.11 manylinux
x86_64 wheels, the Lambda's runtime) and, when built with CPython 3.11, their bytecode (unchecked-hash
.pyc files: the Lambda's file system is read-only, so without them every cold start compiles every
module). boto3 comes with the Lambda runtime.
"""

from __future__ import annotations

import compileall
import importlib.util
import json
import py_compile
import shutil
import sys
import zipfile
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


def build_plugins_zip(target: Path) -> Path:
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
    return Bundle(
        root=out_dir,
        dags=dags,
        plugins_zip=build_plugins_zip(out_dir / "plugins.zip"),
        requirements=requirements,
        startup_script=startup,
    )


CORE = IMPORT_ROOTS["matcarv_aiops"]
LAMBDA_HANDLER = "matcarv_aiops.ingress.handler.handler"
# Every core module the handler imports, and nothing else (tests/infra checks the package holds exactly
# these and that the handler runs from them alone).
LAMBDA_MODULES = (
    "matcarv_aiops/__init__.py",
    "matcarv_aiops/events.py",  # the EventBridge envelope, without the rest of matcarv_aiops.models
    "matcarv_aiops/settings.py",
    "matcarv_aiops/ingress/__init__.py",
    "matcarv_aiops/ingress/handler.py",
    "matcarv_aiops/ingress/patterns.py",
    "matcarv_aiops/ingress/route_table.py",
    "matcarv_aiops/ingress/routing.py",
    "matcarv_aiops/ingress/trigger_client.py",
)
LAMBDA_ROUTE_TABLE = "matcarv_aiops/ingress/route_table.json"  # the catalogue, compiled
# Top-level modules and packages the handler needs beyond the standard library and boto3.
LAMBDA_DEPENDENCIES = (
    "pydantic",
    "pydantic_core",
    "typing_extensions",
    "annotated_types",
    "typing_inspection",
)
LAMBDA_CACHE_TAG = "cpython-311"  # the Lambda runtime's (python3.11): bytecode of any other is not shipped
_SKIP_IN_DEPENDENCIES = shutil.ignore_patterns("__pycache__", "*.pyc", "*.dist-info", "tests")


class PackagingError(RuntimeError):
    """The Lambda package cannot be built; the message says what is missing."""


def build_lambda_package(out_dir: Path) -> Path:
    """Write the trigger Lambda's code to ``out_dir`` (emptied first) and return it."""
    out_dir = Path(out_dir)
    missing = [name for name in LAMBDA_MODULES if not (CORE.parent / name).is_file()]
    if missing:
        raise PackagingError(
            f"the trigger Lambda's module(s) {', '.join(missing)} do not exist under {CORE.parent}"
        )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    for name in LAMBDA_MODULES:
        destination = out_dir / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CORE.parent / name, destination)
    from matcarv_aiops.ingress.route_table import compile_route_table

    compile_route_table(out_dir / LAMBDA_ROUTE_TABLE)
    for name in LAMBDA_DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise PackagingError(f"dependency {name!r} is not installed in this environment (run `uv sync`)")
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, out_dir / name, ignore=_SKIP_IN_DEPENDENCIES)
        else:
            shutil.copyfile(origin, out_dir / origin.name)
    if sys.implementation.cache_tag == LAMBDA_CACHE_TAG:
        compileall.compile_dir(
            out_dir, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
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
