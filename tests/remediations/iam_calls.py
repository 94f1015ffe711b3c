"""Checks that a handler calls only the AWS APIs its catalogue entry declares as IAM permissions.

Opt in per test module:
    from tests.remediations.iam_calls import declared_permissions_only  # noqa: F401 (a fixture)
    pytestmark = pytest.mark.usefixtures("declared_permissions_only")

Every client a handler gets from ``RemediationContext.client`` records "<service>:<Operation>" before
each call (boto3's service names are the IAM prefixes for the services used here). After the test,
every recorded call must be in the entry's ``permissions``.
"""

from __future__ import annotations

import pytest

from aiops_local.moto_iam import IAM_ACTION_OF  # API operations IAM authorises under another name
from matcarv_aiops.remediations.base import RemediationContext


@pytest.fixture
def declared_permissions_only(monkeypatch):
    calls: dict[str, set[str]] = {}
    wrapped = RemediationContext.client

    def client(self, service):
        found = wrapped(self, service)
        if service not in self._clients or not getattr(self._clients[service], "_aiops_recorded", False):

            def record(model, **_):
                operation = f"{service}:{model.name}"
                calls.setdefault(self.entry.id, set()).add(IAM_ACTION_OF.get(operation, operation))

            found.meta.events.register("before-call.*.*", record)
            self._clients[service]._aiops_recorded = True
        return found

    monkeypatch.setattr(RemediationContext, "client", client)
    yield calls
    from matcarv_aiops.catalogue import get_entry

    for entry_id, used in calls.items():
        undeclared = sorted(used - set(get_entry(entry_id).permissions))
        assert not undeclared, f"{entry_id} calls AWS APIs its catalogue entry does not declare: {undeclared}"
