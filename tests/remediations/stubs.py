"""botocore Stubber for the APIs moto lacks, wired into the remediation handlers' clients.

``stubbed_clients(monkeypatch)`` returns ``stub(service)``: the next handler clients for that service
(``RemediationContext.client``) are one stubbed client, so a test queues documented responses in call
order with ``add_response`` and checks ``assert_no_pending_responses()`` at the end. Other services
stay on moto.
"""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from matcarv_aiops.remediations.base import RemediationContext


def stubbed_clients(monkeypatch):
    stubs: dict[str, tuple[object, Stubber]] = {}
    real_client = RemediationContext.client

    def client(self, service):
        if service in stubs:
            return stubs[service][0]
        return real_client(self, service)

    monkeypatch.setattr(RemediationContext, "client", client)

    def stub(service: str, region: str = "us-east-1") -> Stubber:
        if service not in stubs:
            boto_client = boto3.client(service, region_name=region)
            stubber = Stubber(boto_client)
            stubber.activate()
            stubs[service] = (boto_client, stubber)
        return stubs[service][1]

    return stub


def approver(decision: bool = True, who: str = "arn:aws:iam::123456789012:user/oncall"):
    """A ``decide`` callback for run_pipeline: records a human decision on the waiting execution."""
    from matcarv_aiops.approvals import ApprovalStore
    from matcarv_aiops.settings import get_settings

    def decide(execution_id: str) -> None:
        ApprovalStore(get_settings()).decide(
            execution_id, approve=decision, approver=who, reason="test decision"
        )

    return decide
