"""How moto 5.2 enforces IAM, and a policy rewritten so moto can enforce it without granting more actions.

moto (``moto/iam/access_control.py``, ``moto/core/authorization.py``) authorises each request, once
INITIAL_NO_AUTH_ACTION_COUNT requests have passed, as follows; ``moto_view`` adapts a policy to it
without adding any action IAM would not authorise for the same calls:

- **Actions:** matched exactly, as ``<credential scope>:<operation>``. The scope is the request's signing
  name, which is the IAM prefix for every service here except CloudWatch (``monitoring``) and the
  Resource Groups Tagging API (``tagging``): each ``cloudwatch:X`` is also granted as ``monitoring:X``,
  each ``tag:X`` as ``tagging:X``; and the operation is the API's, so a batch call
  IAM authorises as the single one (``sqs:SendMessageBatch`` as ``sqs:SendMessage``) is granted as both,
  as are the S3 calls moto names its own way (it authorises ``GetPublicAccessBlock`` on a bucket as
  ``s3:ListBucket``, ``PutPublicAccessBlock`` as ``s3:CreateBucket``).
- **Signatures:** checked, but moto cannot recompute them for Lambda, CloudFront and Route 53 requests
  (``SIGNATURE_UNVERIFIABLE``): the signature check (never the authorisation) is skipped for those.
- **Resources:** only S3 requests (bucket or object ARN) and ``sts:AssumeRole`` (the role ARN) are
  checked against a real ARN; IAM calls naming a role and SQS calls by queue URL sometimes are; every
  other request is checked against ``"*"``, which a scoped ARN never matches. So statements of any
  other service get ``"Resource": "*"``: for them enforcement proves the action set, and
  ``tests/iam/test_static.py`` checks the ARNs.
- **Conditions:** only ``StringEquals`` on keys the request supplies, and for identity policies it
  supplies none, so an Allow's condition is always met and a conditioned Deny would always deny: such
  Denies are left out (the static check covers conditions).
- **Principals:** a trust policy's ``AWS`` principal is compared verbatim with the caller's ARN, which
  for a role's session is ``arn:aws:sts::<account>:assumed-role/<role>/<session>``, never the role's ARN;
  a ``Service`` principal makes moto fail the request (it has no service callers to match).
- **Not evaluated at all:** session policies, permissions boundaries, SCPs, and resource policies
  (DynamoDB's, SNS's, SQS's, KMS keys'; S3 bucket policies only for anonymous reads and DeleteObjects).
"""

from __future__ import annotations

from typing import Any

RESOURCE_CHECKED_BY_MOTO = {"s3", "sts"}
SIGNING_NAMES = {"cloudwatch": "monitoring", "tag": "tagging"}
# API operations that IAM authorises under another action's name (the IAM Service Authorization Reference).
IAM_ACTION_OF = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
# moto names a batch call by its operation; IAM authorises it as the single call's action.
# And moto's S3 names a few calls otherwise than IAM does (moto/s3/responses.py ACTION_MAP): HeadBucket;
# and it looks the bucket's ?publicAccessBlock up under the wrong key, so authorises those calls as the
# method's default (GET ListBucket, PUT CreateBucket, DELETE DeleteBucket).
OPERATIONS_OF: dict[str, list[str]] = {
    "s3:GetBucketPublicAccessBlock": ["s3:GetPublicAccessBlock", "s3:ListBucket"],
    "s3:PutBucketPublicAccessBlock": [
        "s3:PutPublicAccessBlock",
        "s3:DeletePublicAccessBlock",
        "s3:CreateBucket",
        "s3:DeleteBucket",
    ],
    "s3:ListBucket": ["s3:HeadBucket"],
    # the Puts of a TransactWriteItems call are authorised as PutItem by IAM, as the call itself by moto
    "dynamodb:PutItem": ["dynamodb:TransactWriteItems"],
}
for _operation, _action in IAM_ACTION_OF.items():
    OPERATIONS_OF.setdefault(_action, []).append(_operation)
# moto 5.2 cannot recompute the SigV4 signature of these REST services' requests (every call fails with
# SignatureDoesNotMatch, or an empty 403), though it authorises their actions correctly.
SIGNATURE_UNVERIFIABLE = {"lambda", "cloudfront", "route53"}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def moto_view(document: dict) -> dict:
    """``document`` as moto can enforce it (see the module's docstring); its actions unchanged."""
    statements = []
    for statement in document["Statement"]:
        statement = dict(statement)
        if statement["Effect"] == "Deny" and "Condition" in statement:
            continue
        actions = as_list(statement["Action"])
        statement["Action"] = (
            actions
            + [
                f"{SIGNING_NAMES[a.split(':')[0]]}:{a.split(':')[1]}"
                for a in actions
                if a.split(":")[0] in SIGNING_NAMES
            ]
            + [operation for a in actions for operation in OPERATIONS_OF.get(a, [])]
        )
        if not {a.split(":")[0] for a in actions} <= RESOURCE_CHECKED_BY_MOTO:
            statement["Resource"] = "*"
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}
