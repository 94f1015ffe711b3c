"""# manage_exemption

Add or remove one resource's exemption from automated remediation. Trigger this DAG by hand from the
Airflow UI and fill in the form: **add** or **remove**, the **target** ARN, and for an addition the
**owner** who answers for it and the **expiry** in days (at most `AIOPS_EXEMPTION_MAX_DAYS`); a
**reason** either way.

The change is the same as `aiops exempt add|remove`: it is refused with a one-line reason when the input
is wrong (not an ARN, a blank owner or reason, an expiry beyond the maximum, nothing to remove), and each
change writes an audit record (runbook `aiops exempt`) naming the user who triggered this run. An expired
exemption stops applying by itself. The exemptions in force are listed in the AIOps view.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from matcarv_aiops.settings import get_settings

MAX_DAYS = get_settings().safety.exemption_max_days


@dag(
    dag_id="manage_exemption",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["aiops", "exemption"],
    default_args={"owner": "aiops", "retries": 2, "retry_delay": timedelta(seconds=10)},
    params={
        "action": Param("add", type="string", enum=["add", "remove"], title="Add or remove"),
        "target": Param(
            "",
            type="string",
            pattern=r"^arn:[^:]+:[^:]*:[^:]*:[^:]*:.+$",
            title="Target ARN",
            description="The resource to exempt, or whose exemption ends",
        ),
        "owner": Param(
            "",
            type="string",
            maxLength=200,
            title="Owner",
            description="Who answers for the exemption (add only)",
        ),
        "reason": Param("", type="string", minLength=3, maxLength=1000, title="Reason"),
        "expiry_days": Param(
            7,
            type="number",
            exclusiveMinimum=0,
            maximum=MAX_DAYS,
            title="Expires in (days)",
            description=f"add only; at most {MAX_DAYS:g} days (AIOPS_EXEMPTION_MAX_DAYS)",
        ),
    },
)
def manage_exemption():
    # Not retried: a retried change would write a second audit record for one change.
    @task(retries=0)
    def change_exemption(params=None, dag_run=None):
        from matcarv_aiops import exemptions

        operator = getattr(dag_run, "triggering_user_name", None)
        if not operator:
            raise AirflowFailException("cannot tell who triggered this run, so the change cannot be audited")
        settings = get_settings()
        try:
            if params["action"] == "add":
                change = exemptions.add(
                    settings,
                    params["target"],
                    owner=params["owner"],
                    reason=params["reason"],
                    expires=f"{float(params['expiry_days'])}d",
                    operator=operator,
                    requested_by=operator,
                )
            else:
                change = exemptions.remove(
                    settings,
                    params["target"],
                    reason=params["reason"],
                    operator=operator,
                    requested_by=operator,
                )
        except exemptions.BadExemption as exc:
            # The CLI's flag names (--owner, --expires) stand for the form's fields.
            raise AirflowFailException(f"nothing changed: {exc}") from None
        return change.to_json()

    change_exemption()


manage_exemption()
