"""Deployment records -> wire types."""

from __future__ import annotations

from outrider.core.deployments import deployment_model_id
from outrider.storage.records import Deployment, DeploymentEvent, RetrainPolicy

from .schemas import DeploymentEventOut, DeploymentOut, RetrainPolicyOut


def event_out(event: DeploymentEvent) -> DeploymentEventOut:
    return DeploymentEventOut(
        version=event.version,
        action=event.action,  # type: ignore[arg-type]
        target=event.target,
        previous_target=event.previous_target,
        switched_by=event.actor_name,
        switched_by_id=event.actor_id,
        note=event.note,
        switched_at=event.created_at,
    )


def deployment_out(deployment: Deployment) -> DeploymentOut:
    return DeploymentOut(
        name=deployment.name,
        model=deployment_model_id(deployment.name),
        target=deployment.target,
        version=deployment.version,
        created_at=deployment.created_at,
        updated_at=deployment.updated_at,
        history=[event_out(e) for e in deployment.history],
    )


def retrain_policy_out(policy: RetrainPolicy) -> RetrainPolicyOut:
    return RetrainPolicyOut(
        deployment=deployment_model_id(policy.deployment),
        dataset=policy.dataset,
        task_type=policy.task_type,
        min_corrections=policy.min_corrections,
        margin=policy.margin,
        holdout_fraction=policy.holdout_fraction,
        training=policy.training,
        corrections_since=policy.corrections_since,
        run=policy.run,
        created_at=policy.created_at,
        updated_at=policy.updated_at,
    )
