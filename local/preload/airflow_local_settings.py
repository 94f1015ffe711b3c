"""Airflow's local settings for the local stack only (never bundled for MWAA): every Airflow process imports
this module when it starts. What a task process needs is loaded once, in the process that forks it: the
scheduler's LocalExecutor workers, and the task process each of them forks per task, then start with it in
memory instead of loading it again for every task (measured with ``bench/burst.py --profile``; README,
"Latency"):

- boto3 and the platform's packages, at import;
- in the scheduler, before its first fork (``os.register_at_fork``; Airflow's ORM and logging are set up
  by then, and the other processes fork no task): the modules Airflow's task runner imports to parse the
  DAG file, the operators, sensors and every remediation module, and one botocore data loader, shared by
  every boto3 session in the process and its children, that has already read the service models the
  remediations' clients are built from (reading and decoding them is most of a client's creation), the
  hub's clients every run uses (``HUB_CLIENTS``), made once, and the execution role's credentials they
  share, fetched once;
- in the scheduler, and so in every process it forks: a lower CPU priority than the API server's
  (``SCHEDULER_NICENESS``).

``AIOPS_PROFILE_TASKS=<directory>`` (set by ``bench/burst.py --profile``): each task process, and each
worker's supervision of one, writes its cProfile (``task-<pid>-<n>.prof``, ``supervisor-<pid>-<n>.prof``)
and a summary (``.json``: CPU seconds, the requests the task sent its supervisor by type, the modules it
imported itself) there.
"""

import functools
import os
import sys

import boto3
import botocore.session

import matcarv_aiops.pipeline  # noqa: F401
import matcarv_operators  # noqa: F401
import matcarv_sensors  # noqa: F401

# What a task process imported itself beyond the above (bench/burst.py --profile lists them): the task
# runner's DAG-file parse, and the operators and sensors the DAG file builds its tasks from.
TASK_MODULES = (
    "airflow.dag_processing.dagbag",
    "airflow.sdk.bases.sensor",
    "matcarv_operators.steps",
    "matcarv_sensors.steps",
)
# The hub's clients a remediation run's tasks use: state and approvals, diagnostics, the metric, the
# sessions of the remediation and audit-writer roles, the notifications.
HUB_CLIENTS = ("dynamodb", "s3", "cloudwatch", "sts", "sns")
# botocore data every client reads besides its service's own model
BOTOCORE_DATA = ("sdk-default-configuration", "partitions", "endpoints", "_retry")


def _shared_loader(search_path: str | None = None):
    """One data loader per search path for every botocore session of this process (and its forks): the
    loader caches what it read, a session's own loader would read it all again. A session asks with its
    ``data_path`` (None unless configured), so ``_shared_loader()`` must give the same loader."""
    return _loader_for(search_path)


@functools.cache  # keyed on the one argument, however it was passed
def _loader_for(search_path: str | None):
    return botocore.loaders.create_loader(search_path)


def _remediation_services() -> set[str]:
    """The boto3 services the remediations call: the catalogue's IAM prefixes that name a boto3 service
    (elasticloadbalancing is elbv2 there), the hub's own (``HUB_CLIENTS``), and SSM (the runbooks)."""
    from matcarv_aiops.catalogue import catalogue

    prefixes = {action.split(":", 1)[0] for entry in catalogue().values() for action in entry.permissions}
    prefixes = {"elbv2" if p == "elasticloadbalancing" else p for p in prefixes}
    available = set(boto3.session.Session().get_available_services())
    return (prefixes | {*HUB_CLIENTS, "ssm"}) & available


@functools.cache  # once per process: its first fork
def _load_task_code_once() -> None:
    """Before this process's first fork: import and read what every task process would otherwise load."""
    import contextlib
    import importlib

    from botocore.exceptions import DataNotFoundError

    from matcarv_aiops.remediations import load_all

    for module in TASK_MODULES:
        importlib.import_module(module)
    load_all()
    loader = _shared_loader()
    for name in BOTOCORE_DATA:
        loader.load_data(name)
    # The loader caches each read under the arguments it was asked with: asked as botocore asks (making a
    # client; its paginator table, as BaseClient.can_paginate asks), every later client finds them decoded.
    session = boto3.session.Session(aws_access_key_id="preload", aws_secret_access_key="preload")
    for service in sorted(_remediation_services()):
        model = session.client(service, region_name="us-east-1").meta.service_model
        with contextlib.suppress(DataNotFoundError):  # not every service has paginators
            loader.load_service_model(service, "paginators-1", model.api_version)
    # Made here, once, into matcarv_aiops.aws's per-process cache, instead of in every task (making a
    # client sends nothing).
    from matcarv_aiops.aws import hub_client

    for service in HUB_CLIENTS:
        hub_client(service)
    _fetch_hub_credentials()


def _fetch_hub_credentials() -> None:
    """The execution role's credentials, which the hub's clients share, fetched here once: through the
    role profile every task process would otherwise assume the role at its first call (on MWAA, the
    container hands a task its role's credentials without an STS call). They stay refreshable: a process
    whose copy nears its expiry fetches its own. Should AWS not answer, each task fetches its own."""
    from matcarv_aiops.aws import _session
    from matcarv_aiops.settings import get_settings

    try:  # the session hub_client makes its clients from: they share its credentials
        _session(get_settings().platform.region).get_credentials().get_frozen_credentials()
    except Exception as exc:  # never stop the scheduler: tasks fetch them as before
        print(f"preload: the hub's credentials not fetched ahead ({exc}); each task fetches its own")


# botocore.session looks the factory up by this name each time it creates a session's loader.
botocore.session.create_loader = _shared_loader  # type: ignore[attr-defined]
# On MWAA the API server runs apart from the scheduler and workers; here every process shares two cores,
# and the scheduler with eight task processes at the API server's priority slowed its answers (trigger
# calls, status reads) in a burst: the slowest status read 2.3 to 2.7 s (bench/burst.py, README
# "Latency"). The scheduler and every process it forks (its LocalExecutor workers and their task
# processes) run at this niceness, so the API server answers first; they keep their priority among
# themselves (tasks alone at this niceness made the scheduler loop more often, for more CPU per run).
SCHEDULER_NICENESS = 5


if sys.argv[1:2] == ["scheduler"]:  # `airflow scheduler`, as `airflow standalone` starts it
    os.setpriority(os.PRIO_PROCESS, 0, SCHEDULER_NICENESS)  # what it forks inherits it
    os.register_at_fork(before=_load_task_code_once)


def _profile_task_processes(directory: str) -> None:
    """Wrap, in cProfile, the task runner's entry point (the forked task process calls it by name) and the
    supervisor's (each LocalExecutor worker calls it per task, and forks the task process from it)."""
    import cProfile
    import itertools
    import json
    import time

    import structlog
    from airflow.sdk.execution_time import supervisor, task_runner
    from airflow.sdk.execution_time.comms import CommsDecoder

    send = CommsDecoder.send
    requests: dict[str, int] = {}
    numbers = itertools.count()

    def counted_send(self, msg):
        requests[type(msg).__name__] = requests.get(type(msg).__name__, 0) + 1
        return send(self, msg)

    def profiled(role: str, function):
        def run(*args, **kwargs):
            already_imported, cpu_at_start = set(sys.modules), time.process_time()
            requests.clear()
            profile = cProfile.Profile()
            profile.enable()
            try:
                return function(*args, **kwargs)
            finally:
                profile.disable()
                name = f"{role}-{os.getpid()}-{next(numbers)}"
                profile.dump_stats(os.path.join(directory, f"{name}.prof"))
                ti = kwargs.get("ti")
                ids = structlog.contextvars.get_contextvars() if ti is None else {"task_id": ti.task_id}
                summary = {
                    "role": role,
                    **{k: v for k, v in ids.items() if k.endswith("_id")},
                    "cpu_s": time.process_time() - cpu_at_start,
                    "requests": dict(requests),
                    "imported": sorted(set(sys.modules) - already_imported),
                }
                with open(os.path.join(directory, f"{name}.json"), "w") as out:
                    json.dump(summary, out)

        return run

    task_runner.main = profiled("task", task_runner.main)
    supervisor.supervise_task = profiled("supervisor", supervisor.supervise_task)
    CommsDecoder.send = counted_send  # type: ignore[method-assign]


if os.environ.get("AIOPS_PROFILE_TASKS"):
    _profile_task_processes(os.environ["AIOPS_PROFILE_TASKS"])
