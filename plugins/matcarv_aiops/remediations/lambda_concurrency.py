"""Reserved concurrency reads, raises and restores, shared by the entries that scale a Lambda function."""

from __future__ import annotations

# Lambda refuses a reservation that would leave fewer than this many unreserved executions in the account.
MIN_UNRESERVED = 100


def reservable_headroom(lambda_client) -> int:
    """How many more executions the account can still reserve (GetAccountSettings)."""
    unreserved = lambda_client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    return max(int(unreserved) - MIN_UNRESERVED, 0)


def reserved_concurrency(lambda_client, function: str) -> int | None:
    """The function's reserved concurrency now; None when it has none."""
    value = lambda_client.get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions")
    return None if value is None else int(value)


def restore_reserved(lambda_client, function: str, recorded: int | None) -> str:
    """Put the recorded reservation back (or remove it, if there was none)."""
    if recorded is None:
        lambda_client.delete_function_concurrency(FunctionName=function)
        return f"removed the reserved concurrency of {function} (it had none)"
    lambda_client.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=recorded)
    return f"restored the reserved concurrency of {function} to {recorded}"
