"""``matcarv_aiops.provision`` (the in-process tests' resources) against the hub template it mirrors: the
same tables with the same keys, attributes, indexes, billing and TTL, versioned buckets with the same
Object Lock mode, and the same topic. The names come from the template's MWAA configuration options, as
the local stack reads them (``aiops_local.cloudformation.mwaa_settings``)."""

from __future__ import annotations

import pytest

from matcarv_aiops.provision import TABLE_KEYS, provision_platform
from matcarv_aiops.settings import Settings

BUCKET_SETTINGS = ("diagnostics_bucket", "audit_archive_bucket")


@pytest.fixture(scope="module")
def mirrored(synth):
    """What provision_platform leaves in moto, described as the template describes it; and the template's
    resource each setting names (its MWAA option ``aiops.<setting>``, a Ref or a literal)."""
    from moto import mock_aws

    from aiops_infra.app import HUB_STACK

    template = synth.templates[HUB_STACK]
    (environment,) = synth.resources(HUB_STACK, "AWS::MWAA::Environment").values()
    options = environment["Properties"]["AirflowConfigurationOptions"]
    settings = Settings()
    with mock_aws():
        provision_platform(settings)
        import boto3

        ddb, s3 = (
            boto3.client("dynamodb", region_name="us-east-1"),
            boto3.client("s3", region_name="us-east-1"),
        )
        tables = {}
        for setting in TABLE_KEYS:
            name = getattr(settings.platform, setting)
            table = ddb.describe_table(TableName=name)["Table"]
            ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            tables[setting] = {
                "TableName": table["TableName"],
                "KeySchema": table["KeySchema"],
                "AttributeDefinitions": sorted(
                    table["AttributeDefinitions"], key=lambda a: a["AttributeName"]
                ),
                "BillingMode": table["BillingModeSummary"]["BillingMode"],
                "GlobalSecondaryIndexes": sorted(
                    (
                        {
                            "IndexName": i["IndexName"],
                            "KeySchema": i["KeySchema"],
                            "Projection": i["Projection"],
                        }
                        for i in table.get("GlobalSecondaryIndexes", [])
                    ),
                    key=lambda i: i["IndexName"],
                ),
                "TimeToLiveSpecification": (
                    {"AttributeName": ttl["AttributeName"], "Enabled": True}
                    if ttl["TimeToLiveStatus"] == "ENABLED"
                    else None
                ),
            }
        buckets = {}
        for setting in BUCKET_SETTINGS:
            name = getattr(settings.platform, setting)
            lock = None
            if setting == "audit_archive_bucket":
                lock = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
            buckets[setting] = {
                "versioning": s3.get_bucket_versioning(Bucket=name).get("Status"),
                "lock": lock,
            }
        topics = [
            t["TopicArn"].rsplit(":", 1)[1] for t in boto3.client("sns", "us-east-1").list_topics()["Topics"]
        ]
    return template, options, tables, buckets, topics


def _resource(template: dict, option) -> dict:
    assert isinstance(option, dict) and set(option) == {"Ref"}, option
    return template["Resources"][option["Ref"]]


def test_the_tables_are_the_templates(mirrored):
    template, options, tables, _, _ = mirrored
    in_template = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"}
    named = {option["Ref"] for key, option in options.items() if key.removeprefix("aiops.") in TABLE_KEYS}
    assert named == in_template, "every table of the template is mirrored, and nothing else"
    for setting, described in tables.items():
        props = _resource(template, options[f"aiops.{setting}"])["Properties"]
        expected = {
            "TableName": props["TableName"],
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
            "BillingMode": props["BillingMode"],
            "GlobalSecondaryIndexes": sorted(
                props.get("GlobalSecondaryIndexes", []), key=lambda i: i["IndexName"]
            ),
            "TimeToLiveSpecification": props.get("TimeToLiveSpecification"),
        }
        assert described == expected, setting


def test_the_buckets_and_topic_are_the_templates(mirrored):
    template, options, _, buckets, topics = mirrored
    for setting, described in buckets.items():
        props = _resource(template, options[f"aiops.{setting}"])["Properties"]
        assert described["versioning"] == props["VersioningConfiguration"]["Status"], setting
        if "ObjectLockConfiguration" in props:
            wanted = props["ObjectLockConfiguration"]
            assert described["lock"]["ObjectLockEnabled"] == wanted["ObjectLockEnabled"]
            # The mode is the template's; the retention is a day here, since nothing outlives the test.
            assert (
                described["lock"]["Rule"]["DefaultRetention"]["Mode"]
                == wanted["Rule"]["DefaultRetention"]["Mode"]
            )
        else:
            assert described["lock"] is None, setting
    (topic,) = (r for r in template["Resources"].values() if r["Type"] == "AWS::SNS::Topic")
    assert topics == [topic["Properties"]["TopicName"]] == [options["aiops.sns_topic_name"]]


def test_every_bucket_denies_plain_http_in_its_template(synth):
    """The local stack puts the bucket policies without their TLS-only deny (see aiops_local.cloudformation
    ._bucket_policy); that every bucket has one in AWS is checked here, on the templates."""
    from aiops_local.cloudformation import _is_tls_only_deny

    checked = 0
    for stack, template in synth.templates.items():
        resources = template["Resources"]
        buckets = {k for k, r in resources.items() if r["Type"] == "AWS::S3::Bucket"}
        denied = {
            r["Properties"]["Bucket"]["Ref"]
            for r in resources.values()
            if r["Type"] == "AWS::S3::BucketPolicy"
            and any(_is_tls_only_deny(s) for s in r["Properties"]["PolicyDocument"]["Statement"])
        }
        assert denied == buckets, (stack, sorted(buckets - denied))
        checked += len(buckets)
    assert checked >= 5  # at least the source, diagnostics, archive and two access-log buckets
