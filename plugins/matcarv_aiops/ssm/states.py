"""SSM Automation execution statuses (the API's AutomationExecutionStatus), grouped by what a waiter does.

The sensor declares these as class constants; the core's ``run_document`` polls with the same groups.
"""

INTERMEDIATE_STATES: tuple[str, ...] = (
    "Pending",
    "InProgress",
    "Waiting",
    "Cancelling",
    "PendingApproval",
    "Approved",
    "Scheduled",
    "RunbookInProgress",
    "PendingChangeCalendarOverride",
    "ChangeCalendarOverrideApproved",
)
FAILURE_STATES: tuple[str, ...] = (
    "Failed",
    "TimedOut",
    "Cancelled",
    "Rejected",
    "ChangeCalendarOverrideRejected",
    "CompletedWithFailure",
    "Exited",
)
SUCCESS_STATES: tuple[str, ...] = ("Success", "CompletedWithSuccess")
# Step statuses that carry the message a failed execution is reported with.
FAILED_STEP_STATES: tuple[str, ...] = ("Failed", "TimedOut", "Cancelled")
