"""Recycle Bin retention for EBS snapshots: the snapshot retention job deletes old snapshots, and a
deleted snapshot stays recoverable here for ``retention_days`` (safe by default: reversible)."""

from __future__ import annotations

from aws_cdk import aws_rbin as rbin
from constructs import Construct


class SnapshotRecycleBin(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, retention_days: int) -> None:
        super().__init__(scope, construct_id)
        self.rule = rbin.CfnRule(
            self,
            "Rule",
            resource_type="EBS_SNAPSHOT",
            description="MatCarv AIOps: EBS snapshots deleted by the retention job stay recoverable",
            retention_period=rbin.CfnRule.RetentionPeriodProperty(
                retention_period_unit="DAYS", retention_period_value=retention_days
            ),
            # Region-level rule: no resource tags, so it covers every snapshot the job deletes.
        )
