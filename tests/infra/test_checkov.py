"""An independent posture scan: checkov over the synthesized templates (both synth variants). A failed
check must be fixed, or skipped on its resource with a reason (``aiops_infra.nag.skip_checkov``)."""

from __future__ import annotations

import socket

import pytest


def _refuse_network(sock: socket.socket, address) -> None:
    raise AssertionError(f"checkov tried to reach {address}: the scan must run offline")


@pytest.fixture
def checkov_report(synth, synth_variant, monkeypatch):
    # The runner API, not the CLI: the CLI's banner asks PyPI for a newer version.
    monkeypatch.setattr(socket.socket, "connect", _refuse_network)
    from checkov.cloudformation.runner import Runner
    from checkov.runner_filter import RunnerFilter

    files = [
        str(s.outdir / f"{stack}.template.json") for s in (synth, synth_variant) for stack in s.templates
    ]
    return Runner().run(
        root_folder=None, files=files, runner_filter=RunnerFilter(framework=["cloudformation"])
    )


def test_no_check_fails_and_every_skip_says_why(checkov_report):
    failed = [f"{c.check_id} {c.resource} ({c.check_name})" for c in checkov_report.failed_checks]
    assert not failed, "checkov failed checks, neither fixed nor skipped with a reason:\n" + "\n".join(failed)
    assert not checkov_report.parsing_errors
    # The scan saw the templates: hundreds of checks passed over them.
    assert len(checkov_report.passed_checks) > 400
    unexplained = [
        f"{c.check_id} {c.resource}"
        for c in checkov_report.skipped_checks
        if len(c.check_result.get("suppress_comment", "").strip()) < 20
    ]
    assert not unexplained, f"checkov skips without a reason: {unexplained}"


def test_skips_on_one_resource_add_up_and_need_a_reason():
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs

    from aiops_infra.nag import skip_checkov

    queue = sqs.Queue(cdk.Stack(cdk.App(), "S"), "Queue")
    skip_checkov(queue, "CKV_AWS_27", "first reason")
    skip_checkov(queue, "CKV_AWS_999", "second reason")
    assert queue.node.default_child.get_metadata("checkov") == {
        "skip": [
            {"id": "CKV_AWS_27", "comment": "first reason"},
            {"id": "CKV_AWS_999", "comment": "second reason"},
        ]
    }
    with pytest.raises(ValueError, match="checkov skip of CKV_AWS_1 needs a reason"):
        skip_checkov(queue, "CKV_AWS_1", "  ")
