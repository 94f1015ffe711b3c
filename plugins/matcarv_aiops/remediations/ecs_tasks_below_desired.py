"""Force a new deployment of one ECS service whose running task count is below its desired count."""

from __future__ import annotations

from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, tags_from_list


def _cluster_and_service(resource_id: str) -> tuple[str, str]:
    """``cluster/service`` (long ARN format) or ``service`` (old format, default cluster)."""
    parts = resource_id.split("/")
    return (parts[0], parts[1]) if len(parts) == 2 else ("default", parts[-1])


def _primary(service: dict) -> dict:
    return next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), {})


@register
class EcsTasksBelowDesired(Remediation):
    remediation_id = "ecs_tasks_below_desired"

    def _service(self, ctx, cluster: str, name: str) -> dict | None:
        services = ctx.client("ecs").describe_services(cluster=cluster, services=[name], include=["TAGS"])[
            "services"
        ]
        return services[0] if services and services[0]["status"] == "ACTIVE" else None

    def collect_diagnostics(self, ctx):
        cluster, name = _cluster_and_service(ctx.target.resource_id)
        service = self._service(ctx, cluster, name)
        if service is None:
            return None
        primary = _primary(service)
        return {
            "cluster": cluster,
            "service": service["serviceName"],
            "service_arn": service["serviceArn"],
            "desired_count": service["desiredCount"],
            "running_count": service["runningCount"],
            "pending_count": service.get("pendingCount", 0),
            "task_definition": service["taskDefinition"],
            "primary_deployment_id": primary.get("id"),
            "deployment_controller": service.get("deploymentController", {}).get("type", "ECS"),
            "tags": tags_from_list(service.get("tags"), "key", "value"),
        }

    def check_eligibility(self, ctx, state):
        if state["deployment_controller"] != "ECS":
            return (
                f"deployments of this service are managed by {state['deployment_controller']}: "
                "ECS cannot force one"
            )
        if state["desired_count"] == 0:
            return "desired count is 0: no task should be running"
        if state["running_count"] >= state["desired_count"]:
            return (
                f"already fixed: {state['running_count']} of {state['desired_count']} desired tasks are "
                "running"
            )
        return None

    def plan(self, ctx, state):
        return (
            f"force a new deployment of ECS service {state['service']} in cluster {state['cluster']} "
            f"with task definition {state['task_definition']} ({state['running_count']} of "
            f"{state['desired_count']} tasks running)"
        )

    def execute(self, ctx, state):
        current = self._service(ctx, state["cluster"], state["service"])
        if current is None:
            raise RuntimeError(f"service {state['service_arn']} disappeared before the deployment")
        deployment = _primary(current).get("id")
        if deployment != state["primary_deployment_id"]:  # a retry: our deployment already exists
            return {"deployment_id": deployment, "changed": False}
        updated = ctx.client("ecs").update_service(
            cluster=state["cluster"], service=state["service"], forceNewDeployment=True
        )["service"]
        return {"deployment_id": _primary(updated).get("id"), "changed": True}

    def validate(self, ctx, state, result):
        service = self._service(ctx, state["cluster"], state["service"])
        if service is None:
            return Validation(False, f"service {state['service_arn']} disappeared")
        primary = _primary(service)
        if primary.get("id") == state["primary_deployment_id"]:
            return Validation(False, "no new deployment: the recorded deployment is still the primary one")
        if service["taskDefinition"] != state["task_definition"]:
            return Validation(
                False,
                f"the service now runs {service['taskDefinition']}, "
                f"not the recorded {state['task_definition']}",
            )
        if primary.get("rolloutState") == "FAILED":
            return Validation(False, f"the new deployment failed: {primary.get('rolloutStateReason', '')}")
        return Validation(
            True,
            f"deployment {primary['id']} of {state['task_definition']} is primary "
            f"({primary.get('rolloutState', 'no rollout state')}); "
            f"{service['runningCount']} of {service['desiredCount']} tasks running",
        )

    def rollback(self, ctx, state, result):
        ctx.client("ecs").update_service(
            cluster=state["cluster"],
            service=state["service"],
            taskDefinition=state["task_definition"],
            forceNewDeployment=True,
        )
        return f"redeployed the recorded task definition {state['task_definition']} to {state['service']}"
