"""Which resources an IAM action can be scoped to: the one place the policy generator and the policy
test look this up.

Sources: the Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html),
the "Resource types" column of each service's actions table.

- ``NO_RESOURCE_LEVEL_ACTIONS``: actions whose "Resource types" column is empty. IAM only accepts
  ``"Resource": "*"`` for them; this is the complete list of actions allowed to use ``*`` anywhere in
  our templates (the policy test enforces it).
- ``ACTION_RESOURCES``: actions that act on a resource of another type than the catalogue entry's target
  (a snapshot taken of a volume, ...), with the ARN templates to scope them to.
- Every other action of a catalogue entry is scoped to the entry's target ARN templates with the
  resource name wildcarded (``{value}`` -> ``*``): the event names the resource only at run time, so the
  role may act on any resource of that one type in its account and region, and nothing else.

A new catalogue entry whose action fits none of these fails the synth with a message naming the entry
and the action, so it is classified here, with its source, before it can be deployed.
"""

from __future__ import annotations

from collections.abc import Iterable

# action -> why it has no resource-level permissions (service authorization reference, "Resource types" empty)
NO_RESOURCE_LEVEL_ACTIONS: dict[str, str] = {
    # EC2: every Describe* action is account-wide.
    "ec2:DescribeInstances": "EC2 Describe* actions support no resource-level permissions",
    "ec2:DescribeInstanceStatus": "EC2 Describe* actions support no resource-level permissions",
    "ec2:DescribeVolumes": "EC2 Describe* actions support no resource-level permissions",
    "ec2:DescribeVolumeStatus": "EC2 Describe* actions support no resource-level permissions",
    "ec2:DescribeSnapshots": "EC2 Describe* actions support no resource-level permissions",
    "ec2:DescribeSecurityGroups": "EC2 Describe* actions support no resource-level permissions",
    "ec2:DescribeSecurityGroupRules": "EC2 Describe* actions support no resource-level permissions",
    "ec2:DescribeTags": "EC2 Describe* actions support no resource-level permissions",
    # CloudWatch metric reads and writes name no resource.
    "cloudwatch:GetMetricStatistics": "CloudWatch metric reads support no resource-level permissions",
    "cloudwatch:GetMetricData": "CloudWatch metric reads support no resource-level permissions",
    "cloudwatch:ListMetrics": "CloudWatch metric reads support no resource-level permissions",
    "cloudwatch:PutMetricData": "PutMetricData supports no resource-level permissions (scoped by the cloudwatch:namespace condition)",
    "autoscaling:DescribeAutoScalingGroups": "Auto Scaling Describe* actions support no resource-level permissions",
    "autoscaling:DescribeScalingActivities": "Auto Scaling Describe* actions support no resource-level permissions",
    "application-autoscaling:DescribeScalableTargets": "Application Auto Scaling Describe* actions support no resource-level permissions",
    "application-autoscaling:DescribeScalingPolicies": "Application Auto Scaling Describe* actions support no resource-level permissions",
    "sqs:ListQueues": "ListQueues supports no resource-level permissions",
    "s3:GetAccountPublicAccessBlock": "account-level Block Public Access has no resource ARN",
    "logs:DescribeLogGroups": "MWAA lists log groups account-wide; its documented execution role grants DescribeLogGroups on *",
    "lambda:ListFunctions": "ListFunctions supports no resource-level permissions",
    "sns:ListSubscriptions": "ListSubscriptions supports no resource-level permissions",
    "sts:GetCallerIdentity": "GetCallerIdentity supports no resource-level permissions",
}

# action -> ARN templates ({region}, {account}) for actions whose resource is not the entry's target type
ACTION_RESOURCES: dict[str, tuple[str, ...]] = {
    # CreateSnapshot authorizes on the source volume and on the new snapshot.
    "ec2:CreateSnapshot": ("arn:aws:ec2:{region}:{account}:volume/*", "arn:aws:ec2:{region}::snapshot/*"),
    # Tags written by a remediation go on the snapshots it creates.
    "ec2:CreateTags": ("arn:aws:ec2:{region}::snapshot/*",),
    "ec2:StartInstances": ("arn:aws:ec2:{region}:{account}:instance/*",),
    "ec2:StopInstances": ("arn:aws:ec2:{region}:{account}:instance/*",),
    "ecs:UpdateService": ("arn:aws:ecs:{region}:{account}:service/*",),
    "ecs:DescribeServices": ("arn:aws:ecs:{region}:{account}:service/*",),
    "ecs:DescribeTasks": ("arn:aws:ecs:{region}:{account}:task/*",),
    "ecs:ListTasks": ("arn:aws:ecs:{region}:{account}:container-instance/*",),
    # An entry that runs its runbook: start and follow the AIOps documents, passing the runbooks' role.
    "ssm:StartAutomationExecution": ("arn:aws:ssm:{region}:{account}:automation-definition/AIOps-*",),
    "ssm:GetAutomationExecution": ("arn:aws:ssm:{region}:{account}:automation-execution/*",),
    "ssm:StopAutomationExecution": ("arn:aws:ssm:{region}:{account}:automation-execution/*",),
    "iam:PassRole": ("arn:aws:iam::{account}:role/AIOpsSSMAutomationRole",),
}


class UnclassifiedActionError(ValueError):
    """A catalogue entry declares an action this module cannot scope; the message names both."""


def service_of(arn_or_action: str) -> str:
    if arn_or_action.startswith("arn:"):
        return arn_or_action.split(":")[2]
    return arn_or_action.split(":", 1)[0]


def scoped_resources(*, remediation_id: str, action: str, target_arn_templates: Iterable[str],
                     region: str, account: str) -> list[str]:
    """The resources one action of one catalogue entry is granted on (``["*"]`` only where IAM allows nothing else)."""
    if action in NO_RESOURCE_LEVEL_ACTIONS:
        return ["*"]
    if action in ACTION_RESOURCES:
        return [template.format(region=region, account=account) for template in ACTION_RESOURCES[action]]
    same_service = [template for template in target_arn_templates if service_of(template) == service_of(action)]
    if same_service:
        return sorted({template.format(value="*", region=region, account=account) for template in same_service})
    raise UnclassifiedActionError(
        f"catalogue entry {remediation_id!r}: action {action!r} acts on no resource of the entry's target type "
        f"and is not classified in infra/aiops_infra/iam_actions.py; add it to NO_RESOURCE_LEVEL_ACTIONS "
        f"or ACTION_RESOURCES with its source")
