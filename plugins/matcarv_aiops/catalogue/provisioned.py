"""What the platform creates in a member account for each catalogue entry to fire, and what it relies on
being there: the README's "What gets created in your accounts" table, generated from the catalogue
(``aiops catalogue`` users and the README read the same words)."""

from __future__ import annotations

from matcarv_aiops.catalogue import (
    ApiCallCondition,
    ConfigRuleCondition,
    MetricAlarmCondition,
    SecurityHubFindingCondition,
    ServiceEventCondition,
    TriggerCondition,
    catalogue,
)

HEADER = "| entry | created in the account | it fires on |\n| --- | --- | --- |"


def _created(entry_id: str, condition: TriggerCondition, synced: dict) -> str:
    from matcarv_aiops.maintenance.alarm_sync import GLOBAL_METRICS_REGION

    if isinstance(condition, MetricAlarmCondition):
        source = synced.get(entry_id)
        if source is None:
            return (
                "nothing: create the alarm yourself on the agent's metric (its dimensions are the agent's "
                "configuration)"
            )
        where = (
            "in every account and Region, beside its resource"
            if source.regional
            else f"in every account, in {GLOBAL_METRICS_REGION} only: its metrics are there, and the "
            "deployment must cover it"
        )
        return (
            f"CloudWatch alarm `AIOps-{entry_id}-<{source.dimension}>` per opted-in resource "
            f"(`alarm_sync`, hourly, {where})"
        )
    if isinstance(condition, ConfigRuleCondition):
        return (
            f"AWS Config rule `{condition.rule_name}` (`{condition.source_identifier}`), member stack "
            "and each regional stack, unless in `existingConfigRules`"
        )
    if isinstance(condition, ApiCallCondition):
        return "nothing: CloudTrail's management events (a trail must be logging)"
    if isinstance(condition, SecurityHubFindingCondition):
        return (
            "nothing: Security Hub sends the finding (Security Hub on, with the standard or the product "
            "enabled)"
        )
    assert isinstance(condition, ServiceEventCondition)
    return f"nothing: {condition.source} sends the event"


def rows() -> list[str]:
    from matcarv_aiops.maintenance.alarm_sync import alarm_sources

    synced = alarm_sources()
    table = []
    for entry in catalogue().values():
        created = "<br>".join(_created(entry.id, c, synced) for c in entry.trigger_conditions)
        fires = "<br>".join(f"`{c.describe()}`" for c in entry.trigger_conditions)
        table.append(f"| `{entry.id}` | {created} | {fires} |")
    return table


def readme_table() -> str:
    return "\n".join([HEADER, *rows()])


if __name__ == "__main__":
    print(readme_table())
