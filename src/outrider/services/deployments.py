"""Deployments: stable names (``@name``) that an account points at one of its models and switches atomically.

The catalog resolves ``@name`` on every call (``services/catalog.py``); this service changes what it points
at. Each change is one transaction (a compare-and-set on the deployment's version plus its history event),
so a call sees either the old target or the new one, never a mix, and two concurrent switches never both
win. A rollback walks back through the history: each switch is undone by one rollback, in reverse order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError

from outrider.core.deployments import (
    DEPLOYMENT_PREFIX,
    deployment_model_id,
    deployment_name,
    is_deployment_id,
    valid_name,
)
from outrider.core.errors import Conflict, InvalidRequest, ModelNotFound, NotFound
from outrider.services.accounts import Principal
from outrider.services.catalog import ModelCatalog, check_pool
from outrider.storage.db import Database
from outrider.storage.queries import deployments as q
from outrider.storage.records import Deployment, DeploymentEvent

T = TypeVar("T")
MAX_DEPLOYMENTS = 1000  # per account
MAX_NOTE_CHARS = 2000


def actor(principal: Principal) -> tuple[str | None, str]:
    """Who made a change, as recorded in the history: the signed-in user, else the API key."""
    if principal.user is not None:
        return principal.user.id, f"user {principal.user.username}"
    if principal.key is not None:
        return principal.key.id, f"key {principal.key.name} ({principal.key.prefix}...)"
    return None, "account"


POLICY_ACTOR = "retrain policy"
KEPT = "retrain_kept"  # a retrain whose candidate was not better: in the history, the target unchanged


def serving_stack(events: list[DeploymentEvent]) -> list[str]:
    """The targets a rollback returns to, oldest first; the last one is the current target. A create or a
    switch pushes its target; a rollback pops one; a kept retrain changes nothing."""
    stack: list[str] = []
    for event in events:
        if event.action == KEPT:
            continue
        if event.action == "rollback":
            stack.pop()
        else:
            stack.append(event.target)
    return stack


def bare_name(value: str) -> str:
    name = deployment_name(value)
    if not valid_name(name):
        raise InvalidRequest(
            f"invalid deployment name '{value[:80]}': 1 to 63 lower-case letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit (called as '{DEPLOYMENT_PREFIX}name')",
            param="name",
        )
    return name


class DeploymentService:
    def __init__(self, db: Database, catalog: ModelCatalog) -> None:
        self.db = db
        self.catalog = catalog

    async def _write(self, work: Callable[[], T]) -> T:
        return await self.db.in_writer(work)

    async def _read(self, principal: Principal, name: str) -> Deployment:
        def read() -> Deployment | None:
            with self.db.session() as s:
                return q.get_deployment(s, principal.account.id, name)

        found = await asyncio.to_thread(read)
        if found is None:
            raise NotFound(f"deployment '{deployment_model_id(name)}' not found; GET /deployments lists this account's")
        return found

    async def _check_target(self, principal: Principal, model_id: str, param: str | None) -> None:
        """A target is a model this caller may call: visible to its account and inside its key's pool."""
        if is_deployment_id(model_id):
            raise InvalidRequest("a deployment points at a model id, not at another deployment", param=param)
        spec = await self.catalog.model_for(model_id, principal.account.id, param=param)
        check_pool(principal, model_id, spec, param or "model_id")

    async def list(self, principal: Principal) -> list[Deployment]:
        def read() -> list[Deployment]:
            with self.db.session() as s:
                return q.list_deployments(s, principal.account.id)

        return await asyncio.to_thread(read)

    async def get(self, principal: Principal, name: str) -> Deployment:
        return await self._read(principal, bare_name(name))

    async def put(
        self, principal: Principal, name: str, model_id: str, note: str | None = None
    ) -> tuple[Deployment, bool]:
        """Create the deployment or switch it to ``model_id``; (deployment, created). Pointing it at the model it
        already serves changes nothing."""
        name = bare_name(name)
        _check_note(note)
        await self._check_target(principal, model_id, "model_id")
        actor_id, actor_name = actor(principal)
        account_id = principal.account.id

        def write() -> tuple[Deployment | None, bool]:
            with self.db.session() as s:
                current = q.get_deployment(s, account_id, name, history=0)
                if current is None:
                    if q.count_deployments(s, account_id) >= MAX_DEPLOYMENTS:
                        raise Conflict(f"an account has at most {MAX_DEPLOYMENTS} deployments")
                    created = q.create_deployment(
                        s,
                        account_id=account_id,
                        name=name,
                        target=model_id,
                        actor_id=actor_id,
                        actor_name=actor_name,
                        note=note,
                    )
                    return created, True
                if current.target == model_id:
                    return q.get_deployment(s, account_id, name), False
                switched = q.change_target(
                    s, current, action="switch", target=model_id, actor_id=actor_id, actor_name=actor_name, note=note
                )
                return switched, False

        try:
            deployment, created = await self._write(write)
        except IntegrityError as exc:  # created by a concurrent request between the read and the insert
            raise Conflict(f"deployment '{deployment_model_id(name)}' was created concurrently; retry") from exc
        if deployment is None:
            raise Conflict(f"deployment '{deployment_model_id(name)}' was switched concurrently; retry")
        return deployment, created

    async def _previous_target(self, deployment: Deployment) -> str | None:
        """The target a rollback returns to (None: it has had only one)."""

        def events() -> list[DeploymentEvent]:
            with self.db.session() as s:
                return q.all_events(s, deployment.id)

        stack = serving_stack(await asyncio.to_thread(events))
        return stack[-2] if len(stack) >= 2 else None

    async def rollback_target(self, principal: Principal, name: str) -> str | None:
        """What a rollback of the deployment would point it at now (None: nothing to roll back to)."""
        return await self._previous_target(await self.get(principal, name))

    async def rollback(self, principal: Principal, name: str, note: str | None = None) -> Deployment:
        """Point the deployment back at the target it had before its current one was set."""
        name = bare_name(name)
        _check_note(note)
        current = await self._read(principal, name)
        previous = await self._previous_target(current)
        if previous is None:
            raise Conflict(f"deployment '{deployment_model_id(name)}' has no earlier target to roll back to")
        try:
            await self._check_target(principal, previous, None)
        except ModelNotFound as exc:
            raise Conflict(
                f"cannot roll back '{deployment_model_id(name)}': its previous target '{previous}' no longer exists"
            ) from exc
        actor_id, actor_name = actor(principal)

        def write() -> Deployment | None:
            with self.db.session() as s:
                return q.change_target(
                    s, current, action="rollback", target=previous, actor_id=actor_id, actor_name=actor_name, note=note
                )

        deployment = await self._write(write)
        if deployment is None:
            raise Conflict(f"deployment '{deployment_model_id(name)}' was switched concurrently; retry")
        return deployment

    async def by_policy(
        self, account_id: str, name: str, *, expected: str, target: str, note: str
    ) -> Deployment | None:
        """A retrain policy's outcome in the history: a switch to ``target``, or (``target`` equal to ``expected``)
        a ``retrain_kept`` event with the reason. None when the deployment no longer serves ``expected``."""

        def write() -> Deployment | None:
            with self.db.session() as s:
                current = q.get_deployment(s, account_id, name, history=0)
                if current is None or current.target != expected:
                    return None
                action = KEPT if target == expected else "switch"
                return q.change_target(
                    s, current, action=action, target=target, actor_id=None, actor_name=POLICY_ACTOR, note=note
                )

        return await self._write(write)

    async def delete(self, principal: Principal, name: str) -> str:
        name = bare_name(name)

        def write() -> bool:
            with self.db.session() as s:
                return q.delete_deployment(s, principal.account.id, name)

        if not await self._write(write):
            raise NotFound(f"deployment '{deployment_model_id(name)}' not found; GET /deployments lists this account's")
        return name


def _check_note(note: str | None) -> None:
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise InvalidRequest(f"note: at most {MAX_NOTE_CHARS} characters", param="note")
