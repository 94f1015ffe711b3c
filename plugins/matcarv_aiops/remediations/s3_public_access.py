"""Re-enable S3 Block Public Access on one bucket."""

from __future__ import annotations

from botocore.exceptions import ClientError

from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, RemediationContext, Validation, tags_from_list

SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
_GONE = {"NoSuchBucket"}


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


@register
class S3PublicAccess(Remediation):
    remediation_id = "s3_public_access"

    def _block(self, ctx: RemediationContext) -> dict[str, bool]:
        try:
            config = ctx.client("s3").get_public_access_block(Bucket=ctx.target.resource_id)
            config = config["PublicAccessBlockConfiguration"]
        except ClientError as exc:
            if _error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
                raise
            config = {}
        return {name: bool(config.get(name, False)) for name in SETTINGS}

    def collect_diagnostics(self, ctx):
        s3, bucket = ctx.client("s3"), ctx.target.resource_id
        try:
            block = self._block(ctx)
        except ClientError as exc:
            if _error_code(exc) in _GONE:
                return None
            raise
        try:
            tags = tags_from_list(s3.get_bucket_tagging(Bucket=bucket)["TagSet"])
        except ClientError as exc:
            if _error_code(exc) != "NoSuchTagSet":
                raise
            tags = {}
        try:
            policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
        except ClientError as exc:
            if _error_code(exc) != "NoSuchBucketPolicy":
                raise
            policy = None
        grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
        return {
            "bucket": bucket,
            "public_access_block": block,
            "tags": tags,
            "policy": policy,
            "acl_grants": grants,
        }

    def check_eligibility(self, ctx, state):
        if all(state["public_access_block"].values()):
            return "already fixed: all four Block Public Access settings are on"
        return None

    def plan(self, ctx, state):
        off = [name for name, on in state["public_access_block"].items() if not on]
        return (
            f"PutPublicAccessBlock on bucket {state['bucket']} with all four settings true "
            f"(off now: {', '.join(off)})"
        )

    def execute(self, ctx, state):
        config = {name: True for name in SETTINGS}
        ctx.client("s3").put_public_access_block(
            Bucket=state["bucket"], PublicAccessBlockConfiguration=config
        )
        return {"applied": config}

    def validate(self, ctx, state, result):
        block = self._block(ctx)
        off = [name for name, on in block.items() if not on]
        if off:
            return Validation(False, f"Block Public Access still off for: {', '.join(off)}")
        return Validation(True, "all four Block Public Access settings are on")
