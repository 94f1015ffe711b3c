"""The eligibility re-checks compare the live metric with the entry's trigger condition, not with a number
of their own: SPEC's value decides, and a changed condition changes the decision."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from matcarv_aiops.catalogue import CatalogueEntry, get_entry
from matcarv_aiops.remediations import get_remediation


def _context(entry: CatalogueEntry) -> Any:
    return SimpleNamespace(entry=entry, threshold=lambda name: entry.thresholds[name])


def _with_threshold(entry: CatalogueEntry, threshold: float) -> CatalogueEntry:
    (alarm,) = entry.trigger_conditions
    return entry.model_copy(
        update={"trigger_conditions": [alarm.model_copy(update={"threshold": threshold})]}
    )


def _cpu(value: float) -> dict[str, Any]:
    return {
        "group_name": "web",
        "desired_capacity": 2,
        "max_size": 4,
        "in_service": 2,
        "cpu_datapoints": [value] * 2,
    }


def _disk(value: float) -> dict[str, Any]:
    return {
        "volume_id": "vol-1",
        "instance_volumes": ["vol-1"],
        "used_percent": value,
        "snapshots_in_progress": [],
    }


def _dlq(value: float) -> dict[str, Any]:
    return {
        "source_queue_urls": ["https://sqs.us-east-1.amazonaws.com/123456789012/orders"],
        "visible": value,
    }


# entry, SPEC's threshold, the state builder: a live value at SPEC's threshold does not act (SPEC says
# "above"), one just over it does; lowered by ten, the same at-threshold value acts.
CASES = [
    pytest.param("ec2_cpu_high", 90, _cpu, id="ec2_cpu_high: SPEC 'CPU > 90 % for 10 min'"),
    pytest.param("ebs_volume_utilisation_high", 85, _disk, id="ebs_volume_utilisation_high: SPEC '> 85 %'"),
    pytest.param("sqs_dlq_depth_high", 100, _dlq, id="sqs_dlq_depth_high: SPEC 'DLQ message count > 100'"),
]


@pytest.mark.parametrize("entry_id, spec, state", CASES)
def test_eligibility_compares_with_the_entrys_threshold(entry_id, spec, state):
    entry, remediation = get_entry(entry_id), get_remediation(entry_id)
    at_spec = remediation.check_eligibility(_context(entry), state(spec))
    assert at_spec is not None and at_spec.startswith("already fixed"), at_spec
    assert remediation.check_eligibility(_context(entry), state(spec + 1)) is None
    lowered = _with_threshold(entry, spec - 10)
    assert remediation.check_eligibility(_context(lowered), state(spec)) is None
