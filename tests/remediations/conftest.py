import pytest

from tests.remediations.harness import run_pipeline


@pytest.fixture
def remediate(aws):
    """run_pipeline under moto with the platform provisioned."""
    return run_pipeline
