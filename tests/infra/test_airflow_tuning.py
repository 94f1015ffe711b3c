"""The scheduler and executor options of airflow_tuning.py: real Airflow 3.3.1 options, none that MWAA keeps
for itself, carried into the environment's AirflowConfigurationOptions and into the local stack."""

from __future__ import annotations

import pytest

from aiops_infra.airflow_tuning import AIRFLOW_TUNING, as_environment

# What MWAA sets itself and keeps: the options its Airflow 3 image calls essential, which "cannot be
# overridden by the customer" (aws/amazon-mwaa-docker-images, images/airflow/3.0.6/python/mwaa/config/
# airflow.py, get_essential_airflow_config), as section.option. The metrics section is MWAA's as a whole.
MWAA_RESERVED = {
    "core.executor",
    "core.load_examples",
    "core.execution_api_server_url",
    "core.fernet_key",
    "core.auth_manager",
    "core.simple_auth_manager_users",
    "core.simple_auth_manager_all_admins",
    "celery.broker_url",
    "celery.celery_config_options",
    "celery.result_backend",
    "celery.worker_enable_remote_control",
    "celery_broker_transport_options.visibility_timeout",
    "operators.default_queue",
    "database.sql_alchemy_conn",
    "logging.logging_config_class",
    "logging.colored_console_log",
    "scheduler.standalone_dag_processor",
    "api.secret_key",
    "fab.config_file",
    "api_auth.jwt_secret",
    "api_auth.jwt_algorithm",
    "execution_api.jwt_expiration_time",
}
MWAA_RESERVED_SECTIONS = {"metrics"}


@pytest.mark.parametrize("key", sorted(AIRFLOW_TUNING))
def test_each_option_is_an_airflow_option_that_mwaa_lets_an_environment_set(key):
    from airflow.configuration import retrieve_configuration_description

    section, option = key.split(".", 1)
    description = retrieve_configuration_description(include_providers=False)
    assert option in description.get(section, {}).get("options", {}), f"{key} is no Airflow 3.3.1 option"
    assert key not in MWAA_RESERVED and section not in MWAA_RESERVED_SECTIONS, f"MWAA keeps {key} for itself"
    value = AIRFLOW_TUNING[key]
    assert isinstance(value, str) and value, "AirflowConfigurationOptions values are strings"
    kind = description[section]["options"][option]["type"]
    if kind in ("integer", "float"):
        assert float(value) > 0, f"{key}: {value}"


def test_the_environment_carries_the_tuning(synth):
    (environment,) = synth.resources("AIOps", "AWS::MWAA::Environment").values()
    options = environment["Properties"]["AirflowConfigurationOptions"]
    assert {key: options[key] for key in AIRFLOW_TUNING} == AIRFLOW_TUNING


def test_the_local_stack_sets_the_same_values():
    from local.stack import LATENCY_TUNING

    assert as_environment()["AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"] == "0.25"
    assert {key: LATENCY_TUNING[key] for key in as_environment()} == as_environment()
