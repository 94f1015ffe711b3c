import uuid
from datetime import UTC, datetime, timedelta

import boto3

from matcarv_aiops.remediations import route53_health_check_failed as handler_module
from tests.events import alarm_event

NAME = "api.shop.example.com."


def _check(route53, ip):
    return route53.create_health_check(
        CallerReference=str(uuid.uuid4()),
        HealthCheckConfig={
            "IPAddress": ip,
            "Port": 443,
            "Type": "HTTPS",
            "ResourcePath": "/health",
            "RequestInterval": 30,
            "FailureThreshold": 3,
        },
    )["HealthCheck"]["Id"]


def _setup(primary_health: float, secondary_health: float | None):
    route53 = boto3.client("route53", region_name="us-east-1")
    zone = route53.create_hosted_zone(Name="shop.example.com", CallerReference="zone")["HostedZone"]["Id"]
    primary, secondary = _check(route53, "192.0.2.10"), _check(route53, "198.51.100.10")
    records = [
        ("us-east-1", "PRIMARY", "192.0.2.10", primary),
        ("eu-west-1", "SECONDARY", "198.51.100.10", secondary),
    ]
    route53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": NAME,
                        "Type": "A",
                        "SetIdentifier": sid,
                        "Failover": role,
                        "TTL": 60,
                        "ResourceRecords": [{"Value": ip}],
                        "HealthCheckId": check,
                    },
                }
                for sid, role, ip, check in records
            ]
        },
    )
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    when = datetime.now(UTC) - timedelta(minutes=1)
    for check, value in ((primary, primary_health), (secondary, secondary_health)):
        if value is not None:
            cloudwatch.put_metric_data(
                Namespace="AWS/Route53",
                MetricData=[
                    {
                        "MetricName": "HealthCheckStatus",
                        "Value": value,
                        "Timestamp": when,
                        "Dimensions": [{"Name": "HealthCheckId", "Value": check}],
                    }
                ],
            )
    return route53, zone, primary


def _roles(route53, zone):
    sets = route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return {
        r["SetIdentifier"]: (r["Failover"], r["ResourceRecords"][0]["Value"])
        for r in sets
        if r.get("Failover")
    }


BEFORE = {"us-east-1": ("PRIMARY", "192.0.2.10"), "eu-west-1": ("SECONDARY", "198.51.100.10")}
AFTER = {"us-east-1": ("SECONDARY", "192.0.2.10"), "eu-west-1": ("PRIMARY", "198.51.100.10")}


def _event(check):
    return alarm_event("AWS/Route53", "HealthCheckStatus", {"HealthCheckId": check})


def test_fails_over_to_the_healthy_secondary(remediate):
    route53, zone, primary = _setup(0, 1)
    run = remediate("route53_health_check_failed", {"event": _event(primary)})
    assert run.outcome == "SUCCESS", run
    assert _roles(route53, zone) == AFTER


def test_validation_failure_fails_back(remediate, monkeypatch):
    route53, zone, primary = _setup(0, 1)
    still_old = handler_module.Validation(False, "resolver still answers 192.0.2.10")
    monkeypatch.setattr(
        handler_module.Route53HealthCheckFailed, "validate", lambda self, ctx, state, result: still_old
    )
    run = remediate("route53_health_check_failed", {"event": _event(primary)})
    assert run.outcome == "FAILURE" and run.started
    assert (
        run.record("rollback").done["rolled_back"] and "failed back" in run.record("rollback").done["detail"]
    )
    assert _roles(route53, zone) == BEFORE


def test_partial_change_is_rolled_back(remediate, monkeypatch):
    route53, zone, primary = _setup(0, 1)

    def demote_primary_only(self, ctx, state):  # leaves the name with no PRIMARY at all
        demoted = dict(state["guarded_record"], Failover="SECONDARY")
        ctx.client("route53").change_resource_record_sets(
            HostedZoneId=state["zone_id"],
            ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": demoted}]},
        )
        return {"change_id": None}

    monkeypatch.setattr(handler_module.Route53HealthCheckFailed, "execute", demote_primary_only)
    run = remediate("route53_health_check_failed", {"event": _event(primary)})
    assert run.outcome == "FAILURE" and "failover roles are" in run.audit.action
    assert _roles(route53, zone) == BEFORE


def test_unhealthy_secondary_is_skipped(remediate):
    route53, zone, primary = _setup(0, 0)
    run = remediate("route53_health_check_failed", {"event": _event(primary)})
    assert run.outcome == "SKIPPED" and "not healthy either" in run.audit.action
    assert _roles(route53, zone) == BEFORE


def test_recovered_primary_is_skipped(remediate):
    route53, zone, primary = _setup(1, 1)
    run = remediate("route53_health_check_failed", {"event": _event(primary)})
    assert run.outcome == "SKIPPED" and "healthy now" in run.audit.action
    assert _roles(route53, zone) == BEFORE
