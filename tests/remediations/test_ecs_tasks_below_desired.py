import boto3
import pytest

from matcarv_aiops.remediations.ecs_tasks_below_desired import EcsTasksBelowDesired
from tests.events import ecs_service_action
from tests.remediations.iam_calls import declared_permissions_only  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("declared_permissions_only")

REGION = "us-east-1"


def _service(monkeypatch, *, running: int, desired: int = 2):
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", str(running))  # moto's running count for new services
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName="shop")
    for image in ("web:1", "web:2"):
        ecs.register_task_definition(
            family="web", containerDefinitions=[{"name": "web", "image": image, "memory": 256}]
        )
    arn = ecs.create_service(cluster="shop", serviceName="web", taskDefinition="web:1", desiredCount=desired)[
        "service"
    ]["serviceArn"]
    return ecs, arn


def _described(ecs):
    service = ecs.describe_services(cluster="shop", services=["web"])["services"][0]
    primary = next(d for d in service["deployments"] if d["status"] == "PRIMARY")
    return service["taskDefinition"], primary["id"]


def test_forces_a_new_deployment(remediate, monkeypatch):
    ecs, arn = _service(monkeypatch, running=0)
    task_definition, deployment = _described(ecs)
    run = remediate("ecs_tasks_below_desired", {"event": ecs_service_action(arn)})
    assert run.outcome == "SUCCESS", run
    after_definition, after_deployment = _described(ecs)
    assert after_deployment != deployment and after_definition == task_definition


def test_failed_validation_redeploys_recorded_task_definition(remediate, monkeypatch):
    ecs, arn = _service(monkeypatch, running=1)
    task_definition, deployment = _described(ecs)

    def wrong_revision(self, ctx, state):  # the deployment went out with another task definition
        ctx.client("ecs").update_service(
            cluster="shop", service="web", taskDefinition="web:2", forceNewDeployment=True
        )
        return {"deployment_id": None, "changed": True}

    monkeypatch.setattr(EcsTasksBelowDesired, "execute", wrong_revision)
    run = remediate("ecs_tasks_below_desired", {"event": ecs_service_action(arn)})
    assert run.outcome == "FAILURE" and run.record("rollback").done["rolled_back"], run
    assert "not the recorded" in run.audit.action
    after_definition, after_deployment = _described(ecs)
    assert after_definition == task_definition and after_deployment != deployment


def test_service_at_desired_count_is_skipped(remediate, monkeypatch):
    ecs, arn = _service(monkeypatch, running=2)
    before = _described(ecs)
    run = remediate("ecs_tasks_below_desired", {"event": ecs_service_action(arn)})
    assert run.outcome == "SKIPPED" and "already fixed" in run.audit.action, run
    assert _described(ecs) == before
