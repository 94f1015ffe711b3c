"""The Lambda's envelope validation (pydantic-core on the stored schema) is EventBridgeEvent's, exactly."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator

from matcarv_aiops import envelope as envelope_module
from matcarv_aiops.envelope import SCHEMA_FILE, Envelope, validate_envelope
from matcarv_aiops.events import EventBridgeEvent, envelope_schema, envelope_schema_text
from tests.ingress import samples

BASE = samples.load("cloudwatch_alarm_ec2_status_check.json")


def test_the_stored_schema_is_the_models_current_one():
    """Byte for byte, key order included: after changing EventBridgeEvent, run
    `python -m matcarv_aiops.events`."""
    assert SCHEMA_FILE.read_text(encoding="utf-8") == envelope_schema_text()
    stored = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert list(stored["schema"]["fields"]) == list(EventBridgeEvent.model_fields)


def _changed(**changes: Any) -> dict[str, Any]:
    """BASE with top-level keys set (a value of ``...`` deletes the key); ``detail_type`` is "detail-type"."""
    event = copy.deepcopy(BASE)
    for key, value in changes.items():
        key = "detail-type" if key == "detail_type" else key
        if value is ...:
            event.pop(key, None)
        else:
            event[key] = value
    return event


REQUIRED = ["id", "detail_type", "source", "account", "time", "region", "detail"]
BAD_INPUTS: list[tuple[str, Any]] = [
    *[(f"missing-{name}", _changed(**{name: ...})) for name in REQUIRED],
    *[(f"null-{name}", _changed(**{name: None})) for name in [*REQUIRED, "version", "resources"]],
    *[
        (f"number-{name}", _changed(**{name: 7}))
        for name in ["id", "detail_type", "source", "account", "version"]
    ],
    *[
        (f"empty-{name}", _changed(**{name: ""}))
        for name in ["id", "detail_type", "source", "account", "region"]
    ],
    ("id-257-chars", _changed(id="x" * 257)),
    ("account-11-digits", _changed(account="12345678901")),
    ("account-13-digits", _changed(account="1234567890123")),
    ("account-with-letter", _changed(account="12345678901a")),
    ("account-padded", _changed(account=" 123456789012")),
    ("account-trailing-newline", _changed(account="123456789012\n")),
    ("region-upper-case", _changed(region="US-east-1")),
    ("region-no-number", _changed(region="us-east")),
    ("region-no-dash", _changed(region="useast1")),
    ("time-words", _changed(time="yesterday")),
    ("time-month-13", _changed(time="2026-13-01T00:00:00Z")),
    ("time-bool", _changed(time=True)),
    ("time-list", _changed(time=["2026-01-01T00:00:00Z"])),
    ("detail-list", _changed(detail=["x"])),
    ("detail-string", _changed(detail="{}")),
    ("resources-string", _changed(resources="arn:aws:ec2:us-east-1:123456789012:instance/i-1")),
    ("resources-numbers", _changed(resources=[1, 2])),
    ("resources-dict", _changed(resources={"a": "b"})),
    ("several-at-once", _changed(account="1", region="x", time="never", source=...)),
    ("not-a-dict", ["a", "list"]),
    ("empty-dict", {}),
]
GOOD_INPUTS: list[tuple[str, Any]] = [
    *[(f"sample-{name}", samples.load(name)) for name in samples.sample_names()],
    ("no-version-no-resources", _changed(version=..., resources=...)),
    ("field-name-instead-of-alias", {**_changed(detail_type=...), "detail_type": "By name"}),
    ("alias-and-name", {**BASE, "detail_type": "The name too"}),
    ("extra-keys-kept", _changed(replay="yes", nested={"a": [1, 2]})),
    ("time-no-zone", _changed(time="2026-01-01T00:00:00")),
    ("time-offset", _changed(time="2026-01-01T02:00:00+02:00")),
    ("time-date-only", _changed(time="2026-01-01")),
    ("time-nanoseconds", _changed(time="2026-01-01T00:00:00.123456789Z")),
    ("time-unix-seconds", _changed(time=1_767_225_600)),
    ("time-unix-milliseconds", _changed(time=1_767_225_600_123)),
    ("time-numeric-string", _changed(time="1767225600")),
    ("time-datetime-object", _changed(time=datetime(2026, 1, 1, tzinfo=UTC))),
    ("resources-tuple", _changed(resources=("arn:aws:ec2:us-east-1:123456789012:instance/i-1",))),
    ("id-256-chars", _changed(id="x" * 256)),
    ("region-gov", _changed(region="us-gov-west-1")),
    ("empty-detail", _changed(detail={})),
]


def _errors(exc: ValidationError) -> list[tuple[Any, ...]]:
    return [(err["type"], err["loc"], err["msg"], err["input"]) for err in exc.errors()]


@pytest.mark.parametrize("data", [data for _, data in BAD_INPUTS], ids=[name for name, _ in BAD_INPUTS])
def test_a_bad_envelope_is_refused_with_the_models_errors(data):
    with pytest.raises(ValidationError) as by_model:
        EventBridgeEvent.model_validate(data)
    with pytest.raises(ValidationError) as by_lambda:
        validate_envelope(data)
    assert _errors(by_lambda.value) == _errors(by_model.value)


@pytest.mark.parametrize("data", [data for _, data in GOOD_INPUTS], ids=[name for name, _ in GOOD_INPUTS])
def test_a_good_envelope_is_accepted_as_the_model_accepts_it(data):
    model = EventBridgeEvent.model_validate(data)
    envelope = validate_envelope(data)
    assert isinstance(envelope, Envelope)
    assert envelope.as_event() == model.as_event()
    assert json.dumps(envelope.as_event()) == json.dumps(model.as_event())  # key order too
    assert envelope.__dict__ == model.__dict__ and envelope.__pydantic_extra__ == model.model_extra
    assert (envelope.id, envelope.source, envelope.account) == (model.id, model.source, model.account)
    assert envelope.time == model.time and envelope.detail_type == model.detail_type


def test_envelopes_compare_by_content():
    first, again = validate_envelope(BASE), validate_envelope(json.loads(json.dumps(BASE)))
    assert first == again and first is not again
    assert first != validate_envelope(_changed(id="another"))
    assert first != validate_envelope(_changed(extra="kept"))  # extras count, as for the model
    assert first != EventBridgeEvent.model_validate(BASE)
    assert repr(first).startswith(f"Envelope(id={BASE['id']!r}, source='aws.cloudwatch'")
    with pytest.raises(TypeError, match="unhashable"):
        hash(first)


def test_a_model_the_lambda_could_not_apply_is_refused_when_the_schema_is_written():
    """Python code in a schema cannot be stored: writing it fails, naming the place."""

    class WithValidator(BaseModel):
        id: str

        @field_validator("id")
        @classmethod
        def _upper(cls, value: str) -> str:
            return value.upper()

    class WithSetDefault(BaseModel):
        tags: set[str] = Field(default_factory=set)

    with pytest.raises(
        ValueError,
        match=r"^WithValidator\.schema\.fields\.id\.schema\.function\.function: <bound method .* cannot be",
    ):
        envelope_schema(WithValidator)
    with pytest.raises(
        ValueError, match=r"^WithSetDefault\..*\.default_factory: <class 'set'> is none of list"
    ):
        envelope_schema(WithSetDefault)


def test_a_missing_or_broken_schema_file_is_one_clear_error(tmp_path, monkeypatch):
    broken = tmp_path / "envelope_schema.json"
    broken.write_text('{"type": "model"', encoding="utf-8")
    monkeypatch.setattr(envelope_module, "SCHEMA_FILE", broken)
    envelope_module._engine.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r"^envelope_schema.json: not a usable envelope schema \(JSON"):
            validate_envelope(BASE)
        broken.unlink()
        envelope_module._engine.cache_clear()
        with pytest.raises(RuntimeError, match=r"FileNotFoundError.*python -m matcarv_aiops.events"):
            validate_envelope(BASE)
    finally:
        envelope_module._engine.cache_clear()
