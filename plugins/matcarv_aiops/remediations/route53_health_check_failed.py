"""Fail a Route 53 failover record over to the secondary region when the primary's health check failed.

Route 53 already answers with the secondary while the primary is unhealthy; this makes the failover
explicit and sticky (the secondary's record set becomes PRIMARY), so a flapping primary does not take
traffic back until a human, or the rollback, fails back.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, tags_from_list
from matcarv_aiops.remediations.metric_reads import latest

_WAIT = {"Delay": 5, "MaxAttempts": 24}
_SWAP = {"PRIMARY": "SECONDARY", "SECONDARY": "PRIMARY"}


@register
class Route53HealthCheckFailed(Remediation):
    remediation_id = "route53_health_check_failed"

    def _health(self, ctx, health_check_id: str | None) -> float | None:
        if not health_check_id:
            return None
        return latest(
            ctx.client("cloudwatch"),
            "AWS/Route53",
            "HealthCheckStatus",
            {"HealthCheckId": health_check_id},
            minutes=ctx.threshold("lookback_minutes"),
            statistic="Minimum",
        )

    def _failover_pair(self, ctx, health_check_id: str) -> tuple[str, dict, dict | None] | None:
        """(zone id, the record set guarded by this health check, its partner of the same name and type)."""
        route53 = ctx.client("route53")
        for page in route53.get_paginator("list_hosted_zones").paginate():
            for zone in page["HostedZones"]:
                records = [
                    r
                    for rpage in route53.get_paginator("list_resource_record_sets").paginate(
                        HostedZoneId=zone["Id"]
                    )
                    for r in rpage["ResourceRecordSets"]
                ]
                for record in records:
                    if record.get("Failover") and record.get("HealthCheckId") == health_check_id:
                        partner = next(
                            (
                                r
                                for r in records
                                if r["Name"] == record["Name"]
                                and r["Type"] == record["Type"]
                                and r.get("Failover")
                                and r.get("SetIdentifier") != record.get("SetIdentifier")
                            ),
                            None,
                        )
                        return zone["Id"], record, partner
        return None

    def _records(self, ctx, zone_id: str, name: str, record_type: str) -> dict[str, dict]:
        """The zone's failover record sets of that name and type, by set identifier, as they are now."""
        found = {}
        pages = (
            ctx.client("route53")
            .get_paginator("list_resource_record_sets")
            .paginate(HostedZoneId=zone_id, StartRecordName=name, StartRecordType=record_type)
        )
        for page in pages:
            for record in page["ResourceRecordSets"]:
                if record["Name"] == name and record["Type"] == record_type and record.get("Failover"):
                    found[record["SetIdentifier"]] = record
        return found

    def collect_diagnostics(self, ctx):
        route53, health_check_id = ctx.client("route53"), ctx.target.resource_id
        try:
            check = route53.get_health_check(HealthCheckId=health_check_id)["HealthCheck"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchHealthCheck":
                return None
            raise
        tags = route53.list_tags_for_resource(ResourceType="healthcheck", ResourceId=health_check_id)
        pair = self._failover_pair(ctx, health_check_id)
        zone_id, guarded, partner = pair if pair else (None, None, None)
        return {
            "health_check_id": health_check_id,
            "health_check_config": check["HealthCheckConfig"],
            "zone_id": zone_id,
            "guarded_record": guarded,  # the record sets exactly as they were: rollback restores them
            "partner_record": partner,
            "health": self._health(ctx, health_check_id),
            "partner_health": self._health(ctx, (partner or {}).get("HealthCheckId")),
            "tags": tags_from_list(tags["ResourceTagSet"].get("Tags")),
        }

    def check_eligibility(self, ctx, state):
        guarded, partner = state["guarded_record"], state["partner_record"]
        if guarded is None:
            return "the health check guards no failover record set: nothing to fail over"
        if guarded["Failover"] != "PRIMARY":
            return f"already fixed: {guarded['Name']} ({guarded['SetIdentifier']}) is already SECONDARY"
        if state["health"] is None or state["health"] >= 1:
            return (
                f"already fixed: health check {state['health_check_id']} is healthy now ({state['health']})"
            )
        if partner is None:
            return f"{guarded['Name']} {guarded['Type']} has no SECONDARY record set to fail over to"
        if not partner.get("HealthCheckId"):
            return (
                f"the secondary record set {partner['SetIdentifier']} has no health check, so its health "
                "cannot be verified: a human decides"
            )
        if state["partner_health"] is None or state["partner_health"] < 1:
            return (
                f"the secondary ({partner['SetIdentifier']}, health check {partner['HealthCheckId']}) is "
                f"not healthy either ({state['partner_health']}): failing over would not help"
            )
        return None

    def plan(self, ctx, state):
        guarded, partner = state["guarded_record"], state["partner_record"]
        return (
            f"fail {guarded['Name']} {guarded['Type']} over in zone {state['zone_id']}: make "
            f"{partner['SetIdentifier']} PRIMARY and {guarded['SetIdentifier']} SECONDARY"
        )

    def _apply(self, ctx, zone_id: str, records: list[dict], comment: str) -> str:
        change = ctx.client("route53").change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch={
                "Comment": comment[:256],
                "Changes": [{"Action": "UPSERT", "ResourceRecordSet": r} for r in records],
            },
        )["ChangeInfo"]
        ctx.client("route53").get_waiter("resource_record_sets_changed").wait(
            Id=change["Id"], WaiterConfig=_WAIT
        )
        return change["Id"]

    def execute(self, ctx, state):
        guarded, partner = state["guarded_record"], state["partner_record"]
        live = self._records(ctx, state["zone_id"], guarded["Name"], guarded["Type"])
        if live.get(guarded["SetIdentifier"], {}).get("Failover") == "SECONDARY":
            return {"change_id": None, "already_failed_over": True}  # a retry after the change went through
        swapped = [dict(r, Failover=_SWAP[r["Failover"]]) for r in (guarded, partner)]
        change_id = self._apply(
            ctx,
            state["zone_id"],
            swapped,
            f"AIOps {ctx.execution_id}: fail over from {guarded['SetIdentifier']}",
        )
        return {"change_id": change_id, "already_failed_over": False}

    def validate(self, ctx, state, result):
        guarded, partner = state["guarded_record"], state["partner_record"]
        if result and result.get("change_id"):  # None: not recorded; the live roles decide
            status = ctx.client("route53").get_change(Id=result["change_id"])["ChangeInfo"]["Status"]
            if status != "INSYNC":
                return Validation(False, f"change {result['change_id']} is {status}, not INSYNC")
        live = self._records(ctx, state["zone_id"], guarded["Name"], guarded["Type"])
        roles = {sid: r["Failover"] for sid, r in live.items()}
        if (
            roles.get(guarded["SetIdentifier"]) != "SECONDARY"
            or roles.get(partner["SetIdentifier"]) != "PRIMARY"
        ):
            return Validation(False, f"failover roles are {roles}")
        return Validation(
            True,
            f"{guarded['Name']} now answers from {partner['SetIdentifier']} (PRIMARY); "
            f"{guarded['SetIdentifier']} is SECONDARY",
        )

    def rollback(self, ctx, state, result):
        guarded, partner = state["guarded_record"], state["partner_record"]
        live = self._records(ctx, state["zone_id"], guarded["Name"], guarded["Type"])
        recorded = [guarded, partner]
        if all(live.get(r["SetIdentifier"]) == r for r in recorded):
            return "record sets are as recorded: nothing to restore"
        change_id = self._apply(
            ctx,
            state["zone_id"],
            recorded,
            f"AIOps {ctx.execution_id}: fail back to {guarded['SetIdentifier']}",
        )
        return (
            f"failed back: restored {guarded['SetIdentifier']} as {guarded['Failover']} and "
            f"{partner['SetIdentifier']} as {partner['Failover']} (change {change_id})"
        )
