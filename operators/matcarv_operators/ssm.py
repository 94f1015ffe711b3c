"""Start an SSM Automation document (SPEC.md pattern 2). Wait for it with
``matcarv_sensors.ssm.AutomationExecutionSensor``.

The backend is a setting (``AIOPS_SSM_BACKEND``): ``aws`` calls StartAutomationExecution on SSM through the
Amazon provider's SsmHook; ``local`` runs the document with the local runner against AWS_ENDPOINT_URL
(moto has no Automation API). The DAG code is the same for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator


def ssm_client(backend: str | None, aws_conn_id: str | None, region_name: str | None):
    """The SSM client for the chosen backend; SsmHook is built only when the backend is aws, at run time."""
    from matcarv_aiops.ssm.service import automation_client

    def from_hook():
        from airflow.providers.amazon.aws.hooks.ssm import SsmHook

        return SsmHook(aws_conn_id=aws_conn_id, region_name=region_name).conn

    return automation_client(backend, aws_client_factory=from_hook)


class StartAutomationExecutionOperator(BaseOperator):
    """Starts ``document_name`` with ``parameters`` and returns the AutomationExecutionId (XCom).

    :param document_name: the SSM document (the file stem in ``ssm/``), e.g. AIOps-EC2StatusCheckRestart
    :param parameters: document parameters; values may be strings, numbers, booleans or lists
    :param client_token: idempotency token (a UUID, e.g. the AIOps execution id): a retried task does not
        start the document twice
    :param backend: ``aws`` or ``local``; default the AIOPS_SSM_BACKEND setting
    """

    template_fields: Sequence[str] = ("document_name", "parameters", "client_token")
    template_fields_renderers = {"parameters": "json"}
    ui_color = "#f3e8fa"

    def __init__(self, *, document_name: str, parameters: dict[str, Any] | None = None,
                 client_token: str | None = None, backend: str | None = None,
                 aws_conn_id: str | None = "aws_default", region_name: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.document_name = document_name
        self.parameters = parameters or {}
        self.client_token = client_token
        self.backend = backend
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def execute(self, context) -> str:
        from matcarv_aiops.ssm.service import to_ssm_parameters

        request: dict[str, Any] = {"DocumentName": self.document_name,
                                   "Parameters": to_ssm_parameters(self.parameters)}
        if self.client_token:
            request["ClientToken"] = self.client_token
        response = ssm_client(self.backend, self.aws_conn_id, self.region_name).start_automation_execution(**request)
        execution_id = response["AutomationExecutionId"]
        self.log.info("started SSM automation %s of %s", execution_id, self.document_name)
        return execution_id
