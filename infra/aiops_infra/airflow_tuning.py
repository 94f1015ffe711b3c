"""The scheduler and executor options that set how fast a remediation runs, and how a burst of them is
taken in: the MWAA environment's `AirflowConfigurationOptions` (merged in `mwaa.airflow_options`), and
the same values in the local stack (`local/stack.py` turns each into its `AIRFLOW__SECTION__KEY`).

Measured with `bench/burst.py` on the local stack (README, "Latency"). Every key is an option of Airflow
3.3.1 that MWAA lets an environment set: none of those MWAA sets itself and keeps (its executor, database,
logging, metrics, auth and secret keys), as `tests/infra/test_airflow_tuning.py` checks.

Left to MWAA on purpose: `core.parallelism` and `celery.worker_autoscale` (the environment class sizes the
workers; `DeploymentConfig.extra_airflow_options` overrides them per environment), the scheduler's and
triggerer's heartbeats (MWAA's health checks read them), `scheduler.task_queued_timeout` (MWAA sets 1800 s),
`core.max_active_runs_per_dag` (set with the platform's options in `mwaa.AIRFLOW_OPTIONS`).
"""

from __future__ import annotations

AIRFLOW_TUNING: dict[str, str] = {
    # A remediation runs five to eight tasks in a row, and each hand-over waits for a scheduler loop. A
    # scheduler that found nothing to do sleeps this long before its next loop (default 1 s). Measured on
    # the local stack (bench/burst.py, single events): from 0.5 s to 0.25 s, a single remediation's p50
    # fell by 1.1 to 1.9 s for every kind (SQS redrive 8.6 -> 7.5 s, ALB 5.3 -> 3.8 s), for 0.06 CPU
    # seconds a second more in the idle scheduler and 0.02 in its database (0.08 -> 0.13 and 0.03 ->
    # 0.05). Under a burst the scheduler does not sleep, so it costs nothing there.
    "scheduler.scheduler_idle_sleep_time": "0.25",
    # One incident raises many alarms of one kind (twenty dead-letter queues at once): that is many runs of
    # the same DAG. The default 16 caps the tasks running across all runs of one DAG, so runs past the
    # sixteenth would wait for a free slot while workers sit idle.
    "core.max_active_tasks_per_dag": "32",
    # The DAG files change only with a deployment (the catalogue ships in plugins.zip, which restarts the
    # environment; a changed file is parsed again at once). Re-parsing every 30 s (the default) would
    # build every remediation DAG twice a minute on the scheduler's CPU, which the burst needs.
    "dag_processor.min_file_process_interval": "300",
    # The one DAG file builds a DAG per catalogue entry; on a small environment class, under load, its
    # parse can take longer than the default 30 s, and a timed-out parse drops every remediation DAG.
    "core.dagbag_import_timeout": "120",
    # A task's worker slot (a LocalExecutor worker; a Celery worker's slot on MWAA) is free again only once
    # the task's supervisor has seen the task process exit. The supervisor waits on the process's sockets
    # for at most this long (default 5 s; it heartbeats in between); when the sockets close before the
    # process is gone, which a busy CPU makes likely, it notices the exit only at the end of that wait, and
    # the slot sits idle meanwhile. Measured in a 20-run burst (bench/burst.py, README "Latency"): at 30 s
    # tasks waited 21 s each for a slot with none running for most of the burst (p95 event to audit 198 s);
    # at 5 s, 2.6 s (68 s); at 1 or 2 s the slots stay busy (60 to 66 s). 2 s: a running task heartbeats
    # every 2 s, one execution API call and a database write each, half of what 1 s costs (heartbeats were
    # the API server's most frequent call at 1 s).
    "workers.min_heartbeat_interval": "2",
}


def as_environment(options: dict[str, str] = AIRFLOW_TUNING) -> dict[str, str]:
    """``section.option`` -> ``AIRFLOW__SECTION__OPTION``: what MWAA does with each option, and what the
    local stack sets."""
    return {"AIRFLOW__{}__{}".format(*key.upper().split(".", 1)): value for key, value in options.items()}
