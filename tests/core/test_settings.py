import pytest

from matcarv_aiops.settings import Settings


def test_defaults_and_env_overrides():
    assert Settings.from_env({}).platform.audit_table == "AutomationAuditLog"
    s = Settings.from_env(
        {
            "AIOPS_PRODUCTION_ACCOUNTS": "111111111111, 222222222222",
            "AIOPS_APPROVAL_TIMEOUT_MINUTES": "5",
            "AIOPS_MAX_ACTIONS_PER_WINDOW": "7",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
    )
    assert s.safety.production_accounts == ("111111111111", "222222222222")
    assert (s.safety.approval_timeout_minutes, s.safety.max_actions_per_window, s.platform.region) == (
        5.0,
        7,
        "eu-west-1",
    )


def test_bad_value_names_the_variable():
    with pytest.raises(ValueError, match="AIOPS_COOLDOWN_MINUTES='soon' is not a valid float"):
        Settings.from_env({"AIOPS_COOLDOWN_MINUTES": "soon"})
