"""AWS Config managed rules for the catalogue's Config-driven entries, in each member account.

Generated from the entries' ``config_rule`` trigger conditions: the rule's name (the one the entry's
EventBridge pattern expects), its managed rule identifier and SPEC's parameters, written once in the
entry. Rules the organisation already has (e.g. from a conformance pack) are left out by naming them in
the ``existingConfigRules`` deployment option. The rules evaluate what the account's Config recorder
records: the recorder itself is the organisation's (one per account and region), not this stack's.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import aws_config as config
from constructs import Construct

from matcarv_aiops.catalogue import CatalogueEntry, ConfigRuleCondition

# How each managed rule is triggered (AWS Config's rule pages): by a change to these resource types, or
# else periodically. A rule not listed here fails the synth: choose before adding its entry.
CHANGE_TRIGGERED = {
    "INCOMING_SSH_DISABLED": ("AWS::EC2::SecurityGroup",),
    "S3_BUCKET_LEVEL_PUBLIC_ACCESS_PROHIBITED": ("AWS::S3::Bucket",),
}
PERIODIC = {"ACCESS_KEYS_ROTATED", "CLOUD_TRAIL_ENABLED"}
PERIODIC_FREQUENCY = "TwentyFour_Hours"


def config_rule_conditions(entries: Iterable[CatalogueEntry]) -> dict[str, ConfigRuleCondition]:
    """Every Config rule the entries start on, by rule name; two entries naming one rule must agree."""
    rules: dict[str, ConfigRuleCondition] = {}
    for entry in entries:
        for condition in entry.trigger_conditions:
            if not isinstance(condition, ConfigRuleCondition):
                continue
            known = rules.setdefault(condition.rule_name, condition)
            if known != condition:
                raise ValueError(
                    f"catalogue entry {entry.id!r}: Config rule {condition.rule_name!r} is "
                    f"{condition.describe()} here and {known.describe()} in another entry"
                )
    return rules


class ConfigRules(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        entries: Iterable[CatalogueEntry],
        existing: Iterable[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        rules = config_rule_conditions(entries)
        existing = set(existing)
        unknown = sorted(existing - set(rules))
        if unknown:
            raise ValueError(
                f"existingConfigRules names {unknown}, which no catalogue entry starts on "
                f"(the entries' rules are {sorted(rules)})"
            )
        self.rules: dict[str, config.CfnConfigRule] = {}
        for name, condition in sorted(rules.items()):
            if name in existing:
                continue
            identifier = condition.source_identifier
            if identifier not in CHANGE_TRIGGERED and identifier not in PERIODIC:
                raise ValueError(
                    f"Config rule {name!r} ({identifier}): say in config_rules.py whether it is "
                    "change-triggered (and on which resource types) or periodic"
                )
            self.rules[name] = config.CfnConfigRule(
                self,
                f"Rule-{name}",
                config_rule_name=name,
                description=f"MatCarv AIOps: {condition.describe()}; NON_COMPLIANT starts a remediation"[
                    :256
                ],
                source=config.CfnConfigRule.SourceProperty(owner="AWS", source_identifier=identifier),
                # Config takes every parameter value as a string.
                input_parameters=(
                    {key: _text(value) for key, value in condition.input_parameters.items()}
                    if condition.input_parameters
                    else None
                ),
                scope=(
                    config.CfnConfigRule.ScopeProperty(
                        compliance_resource_types=list(CHANGE_TRIGGERED[identifier])
                    )
                    if identifier in CHANGE_TRIGGERED
                    else None
                ),
                maximum_execution_frequency=PERIODIC_FREQUENCY if identifier in PERIODIC else None,
            )


def _text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
