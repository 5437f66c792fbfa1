"""Judge configurations: which decoder judges an account's records in the background, and what share of them.

One configuration per account (``project`` None) and one per project, which overrides the account's for that
project's records (a project's rate of 0 turns judging off there). The sample is drawn when a record is written
(``storage/queries/judging.enqueue_sampled``: a hash of the record's id against the rate) and the worker judges
it later (``jobs/judging.py``), never in the request.

The judge model is checked when the configuration is set: a decoder the caller may call (its account's, inside
its key's pool). It is kept as given, so a deployment name (``@judge``) follows its switches.

The recorder draws the sample in every group of records it writes; ``SamplingCache`` keeps each account's
configurations in memory so that a group costs no read. A change made here is applied to this process's cache at
once and broadcast to the other API processes (Redis); one made where no broadcast reaches takes effect within
``OUTRIDER_AUTH_CACHE_TTL_S``.
"""

from __future__ import annotations

import asyncio
import threading
import time

from sqlalchemy.orm import Session

from outrider.core.errors import InvalidRequest, NotFound
from outrider.services.accounts import Principal
from outrider.services.broadcast import RESYNC, Broadcast
from outrider.services.catalog import ModelCatalog
from outrider.services.deployments import actor
from outrider.storage.db import Database
from outrider.storage.queries import judging as q
from outrider.storage.records import JudgeConfig

MAX_PROJECT_CHARS = 200
CHANGE = "judge_config"  # the broadcast kind of a set or deleted configuration


def _project(project: str | None) -> str | None:
    if project is None:
        return None
    if not project.strip() or len(project) > MAX_PROJECT_CHARS:
        raise InvalidRequest(f"project: 1 to {MAX_PROJECT_CHARS} characters", param="project")
    return project


def _scope(project: str | None) -> str:
    return f"project '{project}'" if project else "this account"


class SamplingCache:
    """Accounts' judge configurations as the recorder samples with them, cached for ``ttl_s`` seconds (0: read
    every time) and dropped at once when a change is broadcast. Filled on the database's writer thread, dropped on
    the event loop: a read that a change overtook is not cached."""

    def __init__(self, broadcast: Broadcast, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._cached: dict[str, tuple[q.SamplingConfigs, float]] = {}  # account id -> (its configs, expiry)
        self._changes = 0  # how many changes were applied: a read started before one is stale
        self._lock = threading.Lock()
        self._broadcast = broadcast
        broadcast.on(CHANGE, lambda change: self.forget(str(change.get("account_id"))))
        broadcast.on(RESYNC, lambda _change: self.forget(None))

    def forget(self, account_id: str | None) -> None:
        """Drop an account's configurations (None: every account's)."""
        with self._lock:
            self._changes += 1
            if account_id is None:
                self._cached.clear()
            else:
                self._cached.pop(account_id, None)

    def changed(self, account_id: str) -> None:
        """An account's configuration was set or deleted: apply here at once and tell the other processes
        without holding the event loop on Redis (a record sampled a moment late there is still sampled fairly)."""
        self._broadcast.publish_soon(CHANGE, account_id=account_id)

    def configs(self, session: Session, account_ids: set[str]) -> q.SamplingConfigs:
        """The configurations of ``account_ids``: cached ones, and the others read in ``session``."""
        now = time.monotonic()
        found: q.SamplingConfigs = {}
        missing = set()
        for account_id in account_ids:
            cached = self._cached.get(account_id)
            if cached is not None and cached[1] > now:
                found.update(cached[0])
            else:
                missing.add(account_id)
        if not missing:
            return found
        changes = self._changes
        read = q.sampling_configs(session, missing)
        found.update(read)
        if self._ttl_s > 0:
            with self._lock:
                if changes == self._changes:
                    if len(self._cached) > 10_000:
                        self._cached.clear()
                    for account_id in missing:
                        own = {key: value for key, value in read.items() if key[0] == account_id}
                        self._cached[account_id] = (own, now + self._ttl_s)
        return found


class JudgeConfigService:
    def __init__(self, db: Database, catalog: ModelCatalog, sampling: SamplingCache) -> None:
        self.db = db
        self.catalog = catalog
        self.sampling = sampling

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

        written = await self.db.in_writer(write)
        self.sampling.changed(account_id)
        return written

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
        self.sampling.changed(principal.account.id)
