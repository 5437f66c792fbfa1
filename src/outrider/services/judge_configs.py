"""Judge configurations: which decoder judges an account's records in the background, and what share of them.

One configuration per account (``project`` None) and one per project, which overrides the account's for that
project's records (a project's rate of 0 turns judging off there). The sample is drawn when a record is written
(``storage/queries/judging.enqueue_sampled``: a hash of the record's id against the rate) and the worker judges
it later (``jobs/judging.py``), never in the request.

The judge model is checked when the configuration is set: a decoder the caller may call (its account's, inside
its key's pool). It is kept as given, so a deployment name (``@judge``) follows its switches.
"""

from __future__ import annotations

import asyncio

from outrider.core.errors import InvalidRequest, NotFound
from outrider.services.accounts import Principal
from outrider.services.catalog import ModelCatalog
from outrider.services.deployments import actor
from outrider.storage.db import Database
from outrider.storage.queries import judging as q
from outrider.storage.records import JudgeConfig

MAX_PROJECT_CHARS = 200


def _project(project: str | None) -> str | None:
    if project is None:
        return None
    if not project.strip() or len(project) > MAX_PROJECT_CHARS:
        raise InvalidRequest(f"project: 1 to {MAX_PROJECT_CHARS} characters", param="project")
    return project


def _scope(project: str | None) -> str:
    return f"project '{project}'" if project else "this account"


class JudgeConfigService:
    def __init__(self, db: Database, catalog: ModelCatalog) -> None:
        self.db = db
        self.catalog = catalog

    async def put(
        self, principal: Principal, project: str | None, judge_model: str, sampling_rate: float
    ) -> tuple[JudgeConfig, bool]:
        """Set the judge of the account (``project`` None) or of one project; (config, created)."""
        project = _project(project)
        if not 0.0 <= sampling_rate <= 1.0:
            raise InvalidRequest("sampling_rate must be between 0 and 1", param="sampling_rate")
        await self.catalog.for_call(principal, judge_model, "decoder", param="judge_model")
        account_id = principal.account.id
        actor_name = actor(principal)[1]

        def write() -> tuple[JudgeConfig, bool]:
            with self.db.session() as s:
                return q.put_config(
                    s,
                    account_id=account_id,
                    project_id=project,
                    judge_model=judge_model,
                    sampling_rate=sampling_rate,
                    actor=actor_name,
                )

        return await self.db.in_writer(write)

    async def get(self, principal: Principal, project: str | None) -> JudgeConfig:
        project = _project(project)

        def read() -> JudgeConfig | None:
            with self.db.session() as s:
                return q.get_config(s, principal.account.id, project)

        found = await asyncio.to_thread(read)
        if found is None:
            raise NotFound(f"no judge is configured for {_scope(project)}")
        return found

    async def list(self, principal: Principal) -> list[JudgeConfig]:
        def read() -> list[JudgeConfig]:
            with self.db.session() as s:
                return q.list_configs(s, principal.account.id)

        return await asyncio.to_thread(read)

    async def delete(self, principal: Principal, project: str | None) -> None:
        project = _project(project)

        def write() -> bool:
            with self.db.session() as s:
                return q.delete_config(s, principal.account.id, project)

        if not await self.db.in_writer(write):
            raise NotFound(f"no judge is configured for {_scope(project)}")
