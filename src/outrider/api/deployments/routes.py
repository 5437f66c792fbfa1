"""Deployment routes: parse, call ``DeploymentService``, render. ``{name}`` is taken with or without its '@'."""

from __future__ import annotations

from fastapi import APIRouter, Response

from outrider.api.deps import CurrentPrincipal, ServicesDep
from outrider.core.deployments import deployment_model_id, deployment_name
from outrider.services.retraining import PolicySettings

from .conversion import deployment_out, retrain_policy_out
from .schemas import (
    DeploymentDeleted,
    DeploymentIn,
    DeploymentList,
    DeploymentOut,
    RetrainPolicyDeleted,
    RetrainPolicyIn,
    RetrainPolicyOut,
    RollbackIn,
)

router = APIRouter(prefix="/deployments", tags=["deployments"])


@router.get("", response_model=DeploymentList)
async def list_deployments(who: CurrentPrincipal, svc: ServicesDep) -> DeploymentList:
    return DeploymentList(data=[deployment_out(d) for d in await svc.deployments.list(who)])


@router.get("/{name}", response_model=DeploymentOut)
async def get_deployment(name: str, who: CurrentPrincipal, svc: ServicesDep) -> DeploymentOut:
    return deployment_out(await svc.deployments.get(who, name))


@router.put("/{name}", response_model=DeploymentOut)
async def put_deployment(
    name: str, body: DeploymentIn, response: Response, who: CurrentPrincipal, svc: ServicesDep
) -> DeploymentOut:
    """Create the deployment (201) or switch it to another model (200); the next call to ``@name`` is served
    by the new target."""
    deployment, created = await svc.deployments.put(who, name, body.model_id, body.note)
    response.status_code = 201 if created else 200
    return deployment_out(deployment)


@router.post("/{name}/rollback", response_model=DeploymentOut)
async def rollback_deployment(
    name: str, who: CurrentPrincipal, svc: ServicesDep, body: RollbackIn | None = None
) -> DeploymentOut:
    """Point the deployment back at the target it had before its current one."""
    return deployment_out(await svc.deployments.rollback(who, name, body.note if body else None))


@router.delete("/{name}", response_model=DeploymentDeleted)
async def delete_deployment(name: str, who: CurrentPrincipal, svc: ServicesDep) -> DeploymentDeleted:
    deleted = await svc.deployments.delete(who, name)
    return DeploymentDeleted(name=deleted, model=deployment_model_id(deleted))


@router.put("/{name}/retrain-policy", response_model=RetrainPolicyOut)
async def put_retrain_policy(
    name: str, body: RetrainPolicyIn, response: Response, who: CurrentPrincipal, svc: ServicesDep
) -> RetrainPolicyOut:
    """Set the deployment's retrain policy (201 when new, 200 when replaced; a run in progress goes on)."""
    policy, created = await svc.retraining.put(who, name, PolicySettings(**body.model_dump()))
    response.status_code = 201 if created else 200
    return retrain_policy_out(policy)


@router.get("/{name}/retrain-policy", response_model=RetrainPolicyOut)
async def get_retrain_policy(name: str, who: CurrentPrincipal, svc: ServicesDep) -> RetrainPolicyOut:
    return retrain_policy_out(await svc.retraining.get(who, name))


@router.delete("/{name}/retrain-policy", response_model=RetrainPolicyDeleted)
async def delete_retrain_policy(name: str, who: CurrentPrincipal, svc: ServicesDep) -> RetrainPolicyDeleted:
    await svc.retraining.delete(who, name)
    return RetrainPolicyDeleted(deployment=deployment_model_id(deployment_name(name)))


@router.post("/{name}/retrain", response_model=RetrainPolicyOut, status_code=202)
async def retrain_now(name: str, who: CurrentPrincipal, svc: ServicesDep) -> RetrainPolicyOut:
    """Start a run of the policy now (409 while one runs): the worker takes it through training and evaluation."""
    return retrain_policy_out(await svc.retraining.retrain_now(who, name))
