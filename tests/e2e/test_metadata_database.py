"""The local stack's PostgreSQL cluster: Airflow's SQLAlchemy URL reaches it, and stopping it leaves no
process behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.stack import MetadataDatabase

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _alive(pid: int) -> bool:
    """A process that exists and is no zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_the_cluster_serves_airflow_url_and_stops_without_a_trace(tmp_path):
    import sqlalchemy

    database = MetadataDatabase.start(tmp_path / "pgdata")
    try:
        url = database.sqlalchemy_url()
        assert (
            url.startswith("postgresql+psycopg2://") and str(tmp_path) in url
        )  # a unix socket in its directory
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as connection:
            assert connection.execute(sqlalchemy.text("SELECT current_database()")).scalar() == "airflow"
            assert connection.execute(sqlalchemy.text("SHOW synchronous_commit")).scalar() == "off"
        engine.dispose()
        pids = database.pids()
        assert pids
    finally:
        database.stop()
    assert not [pid for pid in pids if _alive(pid)]
