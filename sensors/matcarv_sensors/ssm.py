from __future__ import annotations

from matcarv_aiops.settings import get_settings
from matcarv_sensors.step import StepSensor


class AutomationExecutionSensor(StepSensor):
    """Waits for the SSM Automation execution that ``execute`` started, through the target account's
    session. A failure state fails the task with the failed step's message, which the audit record
    quotes; success hands the execution to ``validate``."""

    ui_color = "#f3e8fa"

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("poke_interval", get_settings().ssm.ssm_poll_seconds)
        kwargs.setdefault("timeout", 60 * 60)
        super().__init__(**kwargs)
