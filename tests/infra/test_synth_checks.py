"""The synth works offline, cdk-nag's AwsSolutions pack passes with local, reasoned acknowledgements,
and cfn-lint finds no errors in any synthesized template."""

from __future__ import annotations

import pytest

from tests.infra.conftest import MEMBER_STACKS, REGIONAL_STACKS, STACKS


def test_every_stack_synthesizes_without_credentials_or_network(synth, synth_variant):
    for each, stacks in ((synth, STACKS), (synth_variant, STACKS + MEMBER_STACKS + REGIONAL_STACKS)):
        assert each.error is None, each.error
        assert sorted(each.templates) == sorted(stacks)
    for any_synth in (synth, synth_variant):
        for stack, template in any_synth.templates.items():
            assert template["Resources"], f"{stack} is empty"


def test_aws_solutions_checks_have_no_unacknowledged_findings(any_synth):
    reports = [r for r in any_synth.report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert len(reports) == 1, "the AwsSolutions pack did not run"
    findings = [
        (v["ruleName"], c["constructPath"])
        for v in reports[0]["violations"]
        for c in v["violatingConstructs"]
    ]
    assert findings == []
    assert reports[0]["conclusion"] == "success"


def test_every_acknowledgement_is_local_and_has_a_reason(any_synth):
    report = next(r for r in any_synth.report["pluginReports"] if r["pluginName"] == "AwsSolutions")
    suppressed = report["suppressedViolations"]
    assert suppressed, "expected the documented acknowledgements"
    for violation in suppressed:
        where = violation["acknowledgedAt"]
        # Local: on the construct or a construct just above it, never the app or a whole stack.
        assert "/" in where and where.split("/")[0] in any_synth.templates, where
        assert len(violation["reason"]) >= 30, (violation["acknowledgedId"], violation["reason"])
        for construct in violation["violatingConstructs"]:
            assert construct["constructPath"].startswith(where + "/"), (where, construct["constructPath"])


def test_cfn_lint_finds_no_errors(any_synth):
    from cfnlint.api import lint_file

    for stack in any_synth.templates:
        matches = lint_file(any_synth.outdir / f"{stack}.template.json")
        errors = [f"{m.rule.id} {m.message} ({m.path})" for m in matches if m.rule.id.startswith("E")]
        assert errors == [], f"{stack}: {errors}"


def test_a_failing_check_fails_the_synth(tmp_path):
    """The nag plugin really gates: an unencrypted, unlogged bucket makes app.synth() raise."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    app = cdk.App(outdir=str(tmp_path))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    s3.Bucket(cdk.Stack(app, "Bad"), "Bucket")
    with pytest.raises(RuntimeError, match="AwsSolutions-S10"):
        app.synth()
