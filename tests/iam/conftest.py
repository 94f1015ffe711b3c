"""moto with IAM enforced: this process acts as the MWAA execution role (its policies from the synthesized
hub template), and remediations and jobs assume their generated roles from it, as on MWAA.

The tests share the infra worker's one synth (``tests/conftest.py`` puts ``tests/iam`` in that group).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
import pytest
from moto.core.authorization import disable_iam_authentication, enable_iam_authentication

from tests.iam.policies import (
    ACCOUNT,
    REGION,
    SIGNATURE_UNVERIFIABLE,
    execution_role_document,
    put_role,
    role_document,
)
from tests.infra.conftest import synth, synth_variant  # noqa: F401 (the shared session fixtures)

HUB_ROLE = "MwaaExecutionRole"
HUB_SESSION = "airflow-worker"


@pytest.fixture(scope="session")
def templates(synth):  # noqa: F811 (the imported fixture)
    """The synthesized templates (the infra worker's one synth), by stack."""
    return synth.templates


@pytest.fixture(scope="session")
def member_templates(synth_variant):  # noqa: F811 (the imported fixture)
    """The member accounts' home stacks of the variant synth (two members, two Regions), by stack."""
    return {name: t for name, t in synth_variant.templates.items() if name.startswith("AIOpsMember-")}


@pytest.fixture(scope="session")
def hub_template(templates):
    return templates["AIOps"]


@dataclass
class EnforcedAccount:
    """The simulated account, its platform provisioned, this process holding the execution role's
    credentials. ``enforced()`` turns moto's IAM enforcement on for a block."""

    hub_template: dict
    monkeypatch: pytest.MonkeyPatch
    session_arn: str = ""

    def fresh(self) -> None:
        """A new, empty account (moto reset), provisioned again, as the execution role: a second run of a
        scenario starts from nothing."""
        from moto.moto_api._internal.models import moto_api_backend

        from matcarv_aiops.provision import provision_platform
        from matcarv_aiops.settings import reload_settings

        self._as_test_user()
        moto_api_backend.reset()
        settings = reload_settings()
        provision_platform(settings)
        document = execution_role_document(self.hub_template, settings.as_flat())
        hub_arn = put_role(HUB_ROLE, document, trusted_arn=f"arn:aws:iam::{ACCOUNT}:root")
        credentials = boto3.client("sts", region_name=REGION).assume_role(
            RoleArn=hub_arn, RoleSessionName=HUB_SESSION
        )["Credentials"]
        for variable, key in (
            ("AWS_ACCESS_KEY_ID", "AccessKeyId"),
            ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey"),
            ("AWS_SESSION_TOKEN", "SessionToken"),
            ("AWS_SECURITY_TOKEN", "SessionToken"),
        ):
            self.monkeypatch.setenv(variable, credentials[key])
        self.session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/{HUB_ROLE}/{HUB_SESSION}"
        # The audit writer's role, as synthesized: the one principal that adds audit records.
        from aiops_infra.audit_writer import AUDIT_WRITER_ROLE_NAME

        writer_arn = put_role(
            AUDIT_WRITER_ROLE_NAME,
            role_document(self.hub_template, AUDIT_WRITER_ROLE_NAME, settings.as_flat()),
            trusted_arn=self.session_arn,
        )
        self.monkeypatch.setenv("AIOPS_AUDIT_WRITER_ROLE_ARN", writer_arn)
        reload_settings()
        # The runbooks' role, as synthesized: SSM Automation assumes it for a runbook's steps.
        from aiops_infra.ssm_documents import SSM_AUTOMATION_ROLE_NAME

        put_role(
            SSM_AUTOMATION_ROLE_NAME,
            role_document(self.hub_template, SSM_AUTOMATION_ROLE_NAME, settings.as_flat()),
            trusted_arn=self.session_arn,
        )

    def _as_test_user(self) -> None:
        for variable in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
        ):
            self.monkeypatch.setenv(variable, "testing")

    @contextmanager
    def enforced(self) -> Iterator[None]:
        with enable_iam_authentication():
            yield


@pytest.fixture
def account(aws, hub_template, monkeypatch) -> EnforcedAccount:
    """moto, provisioned, with the platform's role templates set as the stack sets them on MWAA."""
    from aiops_infra.maintenance_roles import MAINTENANCE_ROLE_ARN_TEMPLATE
    from aiops_infra.remediation_roles import REMEDIATION_ROLE_ARN_TEMPLATE
    from aiops_infra.ssm_documents import SSM_AUTOMATION_ROLE_NAME
    from matcarv_aiops.settings import reload_settings

    monkeypatch.setenv("AIOPS_REMEDIATION_ROLE_ARN_TEMPLATE", REMEDIATION_ROLE_ARN_TEMPLATE)
    monkeypatch.setenv("AIOPS_MAINTENANCE_ROLE_ARN_TEMPLATE", MAINTENANCE_ROLE_ARN_TEMPLATE)
    monkeypatch.setenv(
        "AIOPS_SSM_AUTOMATION_ROLE_ARN", f"arn:aws:iam::{{account}}:role/{SSM_AUTOMATION_ROLE_NAME}"
    )
    # The local SSM emulator assumes the runbook's AutomationAssumeRole as SSM itself would (IAM checks
    # the remediation role's iam:PassRole, not the caller's sts:AssumeRole): that one call is not
    # enforced; the runbook's steps then run, enforced, as the runbooks' role.
    from aiops_local.ssm_emulator.runner import _Execution

    assume_as_ssm = _Execution.session

    def session(self):
        with disable_iam_authentication():
            return assume_as_ssm(self)

    monkeypatch.setattr(_Execution, "session", session)
    from moto.iam.access_control import IAMRequest

    verify_signature = IAMRequest.check_signature

    def check_signature(self) -> None:
        if self._service not in SIGNATURE_UNVERIFIABLE:
            verify_signature(self)

    monkeypatch.setattr(IAMRequest, "check_signature", check_signature)
    found = EnforcedAccount(hub_template, monkeypatch)
    found.fresh()
    yield found
    monkeypatch.undo()
    reload_settings()
