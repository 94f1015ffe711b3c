"""cdk-nag acknowledgements, always local to the construct they are about and always with a reason."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

PACK = "AwsSolutions"
# checkov's CKV_AWS_27 wants a KMS key on a queue; SSE-SQS encrypts these ones at rest, and EventBridge
# (which sends to them) cannot use the aws/sqs managed key.
SQS_MANAGED_ENCRYPTION = (
    "encrypted at rest with SSE-SQS (SqsManagedSseEnabled), which checkov does not recognise; EventBridge "
    "cannot send to a queue under the aws/sqs managed key, and a customer key adds no protection here"
)


def acknowledge(construct: IConstruct, rule: str, reason: str, *, finding: str | None = None) -> None:
    """Acknowledge one AwsSolutions rule (``"IAM5"``) on ``construct``; ``finding`` narrows it to one
    granular finding (``"Resource::*"``), so other findings of the same rule still fail the synth."""
    rule_id = f"{PACK}-{rule}" + (f"[{finding}]" if finding else "")
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=f"{PACK}::{rule_id}", reason=reason))


def skip_checkov(construct: IConstruct, check: str, reason: str) -> None:
    """Skip one checkov check (``"CKV_AWS_116"``) on the CloudFormation resource behind ``construct``, in
    the template metadata checkov reads (``Metadata.checkov.skip``), with the reason it prints."""
    resource = construct if isinstance(construct, cdk.CfnResource) else construct.node.default_child
    if not isinstance(resource, cdk.CfnResource):
        raise TypeError(f"{construct.node.path}: no CloudFormation resource to put a checkov skip on")
    if not reason.strip():
        raise ValueError(f"{construct.node.path}: checkov skip of {check} needs a reason")
    metadata = resource.get_metadata("checkov") or {"skip": []}
    metadata["skip"].append({"id": check, "comment": reason})
    resource.add_metadata("checkov", metadata)
