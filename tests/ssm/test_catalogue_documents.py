"""The catalogue and ssm/ agree: an entry of pattern ``ssm`` names its document, no other entry names one,
and every document in ssm/ is run by an entry (a document nobody runs would only widen the runbooks' role)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from matcarv_aiops.catalogue import (
    ENTRIES_DIR,
    CatalogueError,
    catalogue,
    load_catalogue,
)
from tests.ssm.conftest import SSM_DIR


def _entry_dir(tmp_path: Path, name: str, **changes) -> Path:
    entry = yaml.safe_load((ENTRIES_DIR / f"{name}.yaml").read_text())
    entry.update(changes)
    entry = {key: value for key, value in entry.items() if value is not None}
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(entry))
    return tmp_path


@pytest.mark.parametrize(
    ("name", "changes", "words"),
    [
        (
            "ec2_status_check_failed",
            {"ssm_document": None},
            "ssm_document: pattern 'ssm' runs an SSM Automation",
        ),
        (
            "ebs_volume_utilisation_high",
            {"ssm_document": "AIOps-EBSVolumeSnapshotAndAlert"},
            "ssm_document: 'AIOps-EBSVolumeSnapshotAndAlert' is given but pattern is 'lambda'",
        ),
        (
            "guardduty_high_finding",
            {"ssm_document": "AIOps-EC2StatusCheckRestart"},
            "is given but pattern is 'step_functions'",
        ),
        (
            "ec2_status_check_failed",
            {"ssm_document": "../AIOps-EC2StatusCheckRestart"},
            "ssm_document: String should",
        ),
    ],
)
def test_pattern_and_ssm_document_must_agree(tmp_path, name, changes, words):
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(_entry_dir(tmp_path, name, **changes))
    assert f"catalogue entry {name!r} ({name}.yaml)" in str(caught.value)
    assert words in str(caught.value)


def test_only_ssm_pattern_entries_name_documents_and_every_document_is_run():
    named = {entry.id: entry.ssm_document for entry in catalogue().values() if entry.ssm_document}
    assert named == {"ec2_status_check_failed": "AIOps-EC2StatusCheckRestart"}
    assert {entry.id for entry in catalogue().values() if entry.pattern == "ssm"} == set(named)
    assert sorted(path.stem for path in SSM_DIR.glob("*.yaml")) == sorted(named.values())
