"""The session policy of a remediation's assume-role: the run may act on its one target and on the few
related resources its catalogue entry declares, and on nothing else its role would otherwise allow.

A session's permissions are the intersection of the role's policy and this one, so the role's scoping
(per action, per resource type, its conditions) still holds; this only narrows the resource. Actions
that support no resource-level permissions stay on ``*``, as in the role policy: which those are is
``catalogue/unscoped_actions.json``, written from the Service Authorization Reference by the CDK app
(``aiops_infra.iam_actions.write_unscoped_actions``; a test fails when it is stale), because the
reference ships with cfn-lint, which the workers do not have.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from botocore.exceptions import ClientError

from matcarv_aiops.catalogue import CatalogueEntry
from matcarv_aiops.models import Target

UNSCOPED_ACTIONS_FILE = Path(__file__).with_name("catalogue") / "unscoped_actions.json"
# STS refuses an inline session policy over 2,048 characters (AssumeRole's Policy parameter).
SESSION_POLICY_MAX_CHARS = 2048


class SessionPolicyError(ValueError):
    """The session policy cannot be made; the message names the entry and why."""


@lru_cache(maxsize=1)
def unscoped_actions() -> frozenset[str]:
    """Catalogue actions IAM authorises only on ``*``."""
    return frozenset(json.loads(UNSCOPED_ACTIONS_FILE.read_text(encoding="utf-8"))["actions"])


def target_resources(target: Target) -> list[str]:
    """The target's ARNs as IAM matches them. An IAM user or role named by a GuardDuty finding has no path
    in its event ARN, but IAM authorises against the ARN with its path (``role/app/web``); names are
    unique in an account whatever the path, so ``role/*/web`` names the same one principal."""
    arns = [target.arn]
    if target.arn.startswith("arn:aws:iam::"):
        for head in (":user/", ":role/"):
            prefix, found, name = target.arn.partition(head)
            if found and name and "/" not in name:
                arns.append(f"{prefix}{head}*/{name}")
    return arns


def _format(template: str, entry: CatalogueEntry, target: Target) -> str:
    return template.format(
        target=target.arn,
        name=target.resource_id,
        region=target.region,
        account=target.account,
        ssm_document=entry.ssm_document or "",
    )


def dead_letter_source_queues(session, target: Target) -> list[str]:
    """The queues whose redrive policy names the target queue as their dead-letter queue."""
    from matcarv_aiops.aws import session_client

    sqs = session_client(session, "sqs", target.region)
    try:
        url = sqs.get_queue_url(QueueName=target.resource_id, QueueOwnerAWSAccountId=target.account)[
            "QueueUrl"
        ]
        pages = sqs.get_paginator("list_dead_letter_source_queues").paginate(QueueUrl=url)
        urls = [source for page in pages for source in page.get("queueUrls", [])]
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return []  # the queue is gone: collect_diagnostics reports it, and nothing is acted on
        raise
    return [f"arn:aws:sqs:{target.region}:{target.account}:{source.rsplit('/', 1)[-1]}" for source in urls]


def auto_scaling_group_of_instance(session, target: Target) -> list[str]:
    """The Auto Scaling group an instance belongs to (none when the target is the group itself)."""
    from matcarv_aiops.aws import session_client

    if ":instance/" not in target.arn:
        return []
    autoscaling = session_client(session, "autoscaling", target.region)
    found = autoscaling.describe_auto_scaling_instances(InstanceIds=[target.resource_id])
    return [
        f"arn:aws:autoscaling:{target.region}:{target.account}:autoScalingGroup:*:autoScalingGroupName/"
        f"{instance['AutoScalingGroupName']}"
        for instance in found.get("AutoScalingInstances", [])
    ]


RESOLVERS: dict[str, Callable[..., list[str]]] = {
    "dead_letter_source_queues": dead_letter_source_queues,
    "auto_scaling_group_of_instance": auto_scaling_group_of_instance,
}

# One related resource's actions and the ARNs they are allowed on.
Grant = tuple[tuple[str, ...], tuple[str, ...]]


def declared_grants(entry: CatalogueEntry, target: Target) -> list[Grant]:
    """The related resources given as ARN templates, filled in for this target."""
    return [
        (tuple(related.actions), (_format(related.arn, entry, target),))
        for related in entry.related_resources
        if related.arn is not None
    ]


def resolved_grants(entry: CatalogueEntry, target: Target, session) -> list[Grant]:
    """The related resources found by their resolvers, asked through ``session`` (one narrowed to the
    target and the declared resources, which is all a resolver reads)."""
    grants = []
    for related in entry.related_resources:
        if related.resolver is not None:
            arns = RESOLVERS[related.resolver](session, target)
            if arns:
                grants.append((tuple(related.actions), tuple(arns)))
    return grants


def has_resolvers(entry: CatalogueEntry) -> bool:
    return any(related.resolver is not None for related in entry.related_resources)


def session_policy(entry: CatalogueEntry, target: Target, grants: list[Grant]) -> str:
    """The policy JSON (compact: STS counts characters): every resource-level action of the entry on the
    target, each related resource's actions on it, and the unscoped actions on ``*``."""
    unscoped = unscoped_actions()
    scoped = [action for action in entry.permissions if action not in unscoped]
    statements: list[dict] = []
    if scoped:
        statements.append(
            {"Sid": "Target", "Effect": "Allow", "Action": scoped, "Resource": target_resources(target)}
        )
    for index, (actions, arns) in enumerate(grants):
        statements.append(
            {"Sid": f"Related{index}", "Effect": "Allow", "Action": list(actions), "Resource": list(arns)}
        )
    star = [action for action in entry.permissions if action in unscoped]
    if star:
        statements.append({"Sid": "NoResourceLevel", "Effect": "Allow", "Action": star, "Resource": "*"})
    policy = json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))
    if len(policy) > SESSION_POLICY_MAX_CHARS:
        raise SessionPolicyError(
            f"catalogue entry {entry.id!r}: the session policy for {target.arn} is {len(policy)} characters, "
            f"over STS's {SESSION_POLICY_MAX_CHARS}; declare fewer related resources"
        )
    return policy
