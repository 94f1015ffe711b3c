"""The README's "What gets created in your accounts" table is the catalogue's, as generated."""

from __future__ import annotations

from matcarv_aiops.catalogue import catalogue
from matcarv_aiops.catalogue.provisioned import readme_table, rows
from tests.conftest import REPO


def test_the_readme_table_is_the_generated_one():
    readme = (REPO / "README.md").read_text()
    assert readme_table() in readme, (
        "README's 'What gets created in your accounts' table differs from the catalogue; regenerate it with "
        "`.venv/bin/python -m matcarv_aiops.catalogue.provisioned`"
    )


def test_every_entry_has_a_row_saying_what_starts_it():
    table = rows()
    assert len(table) == len(catalogue())
    by_entry = {row.split(" | ")[0].strip("| `"): row for row in table}
    assert "`AIOps-ec2_cpu_high-<AutoScalingGroupName>`" in by_entry["ec2_cpu_high"]
    assert "`access-keys-rotated` (`ACCESS_KEYS_ROTATED`)" in by_entry["iam_access_key_old"]
    assert "maxAccessKeyAge=90" in by_entry["iam_access_key_old"]
    assert "create the alarm yourself" in by_entry["ebs_volume_utilisation_high"]
