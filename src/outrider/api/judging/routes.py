"""Judge configuration routes: parse, call ``JudgeConfigService``, render. ``project`` absent: the account's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from outrider.api.deps import CurrentPrincipal, ServicesDep
from outrider.services.judge_configs import MAX_PROJECT_CHARS

from .conversion import judge_config_out
from .schemas import JudgeConfigDeleted, JudgeConfigIn, JudgeConfigList, JudgeConfigOut

router = APIRouter(tags=["judging"])

ProjectQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=MAX_PROJECT_CHARS, description="The project's judge; absent: the account's."),
]


@router.get("/judge-configs", response_model=JudgeConfigList)
async def list_judge_configs(who: CurrentPrincipal, svc: ServicesDep) -> JudgeConfigList:
    """The account's judge and its projects' own judges."""
    return JudgeConfigList(data=[judge_config_out(c) for c in await svc.judge_configs.list(who)])


@router.get("/judge-config", response_model=JudgeConfigOut)
async def get_judge_config(who: CurrentPrincipal, svc: ServicesDep, project: ProjectQuery = None) -> JudgeConfigOut:
    return judge_config_out(await svc.judge_configs.get(who, project))


@router.put("/judge-config", response_model=JudgeConfigOut)
async def put_judge_config(
    body: JudgeConfigIn, response: Response, who: CurrentPrincipal, svc: ServicesDep
) -> JudgeConfigOut:
    """Set the judge of the account or of a project (201 when new, 200 when replaced): from the next record on,
    ``sampling_rate`` of the successful ones are judged in the background by the worker."""
    config, created = await svc.judge_configs.put(who, body.project, body.judge_model, body.sampling_rate)
    response.status_code = 201 if created else 200
    return judge_config_out(config)


@router.delete("/judge-config", response_model=JudgeConfigDeleted)
async def delete_judge_config(
    who: CurrentPrincipal, svc: ServicesDep, project: ProjectQuery = None
) -> JudgeConfigDeleted:
    await svc.judge_configs.delete(who, project)
    return JudgeConfigDeleted(project=project)
