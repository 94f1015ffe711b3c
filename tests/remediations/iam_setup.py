"""IAM users and keys in moto, with key ages set the way a real account would have them."""

from __future__ import annotations

from datetime import timedelta

import boto3
from moto.core.utils import utcnow
from moto.iam.models import iam_backends

from tests.events import ACCOUNT


def user_with_keys(name: str, ages_days: list[int], *, tags: dict[str, str] | None = None):
    """Create the user and one Active key per age; returns (iam client, user id, key ids in order)."""
    iam = boto3.client("iam", region_name="us-east-1")
    user = iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])[
        "User"
    ]
    keys = [iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"] for _ in ages_days]
    moto_user = iam_backends[ACCOUNT]["global"].users[name]
    for key, age in zip(moto_user.access_keys, ages_days, strict=True):  # moto has no API to backdate a key
        key.create_date = utcnow() - timedelta(days=age)
    return iam, user["UserId"], keys


def key_status(iam, name: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]}
