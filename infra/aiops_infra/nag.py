"""cdk-nag acknowledgements, always local to the construct they are about and always with a reason."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(construct: IConstruct, rule: str, reason: str, *, finding: str | None = None) -> None:
    """Acknowledge one AwsSolutions rule (``"IAM5"``) on ``construct``; ``finding`` narrows it to one
    granular finding (``"Resource::*"``), so other findings of the same rule still fail the synth."""
    rule_id = f"{PACK}-{rule}" + (f"[{finding}]" if finding else "")
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=f"{PACK}::{rule_id}", reason=reason))
