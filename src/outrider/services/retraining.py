"""Retrain policies: a deployment retrains itself on its corrected traffic and switches only to a better model.

A policy (per deployment, optional) runs when ``min_corrections`` new human corrections (``incorrect`` verdicts
on calls to ``@name``) have arrived since its last run, or when asked (``POST /deployments/{name}/retrain``).
A run goes through stages, each one a visible step, advanced by the worker's periodic check (``tick``):

1. **build**: ``POST /datasets/{dataset}/from-inferences`` with the deployment's reviewed records appends the
   new examples (duplicates of earlier ones are skipped), and each new example goes to ``{dataset}-train`` or,
   by a hash of its text (``holdout_fraction``), to ``{dataset}-holdout``: the held-out slice is never trained on.
2. **training**: a training job continues from the model the deployment serves on ``{dataset}-train``.
3. **evaluating**: an evaluation job scores the serving model and the candidate on ``{dataset}-holdout``.
4. **decision**: the candidate is switched in (a ``switch`` in the deployment's history, by ``retrain policy``,
   the figures in its note) only when its headline figure (micro F1 for extraction, accuracy for
   classification, exact match for decoders) beats the serving model's by at least ``margin``; otherwise the
   history gets a ``retrain_kept`` event with the reason. A deployment switched by someone meanwhile is left
   alone.

The run (stage, jobs, outcome, reason) is kept on the policy (``GET /deployments/{name}/retrain-policy``). Each
step is a compare-and-set on the policy's revision, so workers sharing the database never advance it twice.
The jobs run as the account (charged like any training job).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from outrider.core.deployments import deployment_model_id
from outrider.core.errors import Conflict, InvalidRequest, NotFound, OutriderError
from outrider.datasets.formats import TASK_TYPES
from outrider.services.accounts import Principal, account_principal
from outrider.services.datasets import DatasetService
from outrider.services.deployments import DeploymentService
from outrider.services.evaluations import EvaluationRequest, EvaluationService
from outrider.services.feedback_data import BuildRequest, FeedbackDataService, FeedbackFilter
from outrider.services.jobs import JobService
from outrider.services.training import DatasetRef, TrainingRequest, TrainingService
from outrider.storage.db import Database
from outrider.storage.queries import now
from outrider.storage.queries import retraining as q
from outrider.storage.records import RetrainPolicy

log = logging.getLogger(__name__)

HEADLINE = {"classification": "accuracy", "decoder": "exact_match"}  # else micro_f1
PENDING = ("queued", "running")


@dataclass(frozen=True)
class PolicySettings:
    dataset: str
    task_type: str
    min_corrections: int = 20
    margin: float = 0.02
    holdout_fraction: float = 0.2
    training_type: str = "full"
    nr_epochs: int | None = None
    batch_size: int | None = None


def headline(task_type: str) -> str:
    return HEADLINE.get(task_type, "micro_f1")


def decide(task_type: str, comparison: dict[str, Any], margin: float) -> tuple[bool, str]:
    """Whether the candidate replaces the serving model, and why: better by at least ``margin`` (and better)."""
    key = headline(task_type)
    figure = (comparison.get("figures") or {}).get(key)
    if figure is None:
        return False, f"the evaluation has no {key} figure"
    difference = figure["difference"]
    said = f"{key} {figure['baseline']:.3f} -> {figure['candidate']:.3f} ({difference:+.3f}"
    if difference > 0 and difference >= margin:
        return True, f"{said}, at least the margin {margin})"
    return False, f"{said}, less than the margin {margin}): kept the serving model"


def held_out(example: dict, fraction: float) -> bool:
    """Whether an example belongs to the held-out slice: a hash of its input, so it is always the same slice."""
    key = example.get("text") if "text" in example else json.dumps(example.get("messages", [])[:-1])
    draw = int.from_bytes(hashlib.sha256(str(key).encode()).digest()[:8], "big") / 2**64
    return draw < fraction


def split(examples: list[dict], fraction: float, holdout_empty: bool) -> tuple[list[dict], list[dict]]:
    """(train, held out); with two or more examples neither side is empty when it must not be."""
    train = [e for e in examples if not held_out(e, fraction)]
    held = [e for e in examples if held_out(e, fraction)]
    if holdout_empty and not held and len(train) >= 2:
        held.append(train.pop())
    if not train and len(held) >= 2:
        train.append(held.pop())
    return train, held


def _check(settings: PolicySettings) -> None:
    if settings.task_type not in TASK_TYPES:
        raise InvalidRequest(f"task_type must be one of {', '.join(TASK_TYPES)}", param="task_type")
    if not 1 <= settings.min_corrections <= 100_000:
        raise InvalidRequest("min_corrections must be between 1 and 100000", param="min_corrections")
    if not 0 <= settings.margin <= 1:
        raise InvalidRequest("margin must be between 0 and 1", param="margin")
    if not 0.05 <= settings.holdout_fraction <= 0.5:
        raise InvalidRequest("holdout_fraction must be between 0.05 and 0.5", param="holdout_fraction")
    if settings.training_type not in ("lora", "full"):
        raise InvalidRequest("training_type must be lora or full", param="training_type")


class RetrainService:
    def __init__(
        self,
        db: Database,
        deployments: DeploymentService,
        feedback_data: FeedbackDataService,
        datasets: DatasetService,
        training: TrainingService,
        evaluations: EvaluationService,
        jobs: JobService,
    ) -> None:
        self.db = db
        self.deployments = deployments
        self.feedback_data = feedback_data
        self.datasets = datasets
        self.training = training
        self.evaluations = evaluations
        self.jobs = jobs

    async def _read(self, account_id: str, name: str) -> RetrainPolicy | None:
        def read() -> RetrainPolicy | None:
            with self.db.session() as s:
                return q.get_policy(s, account_id, name)

        return await asyncio.to_thread(read)

    # -- the API's use cases -------------------------------------------------------------------------------
    async def put(self, principal: Principal, name: str, settings: PolicySettings) -> tuple[RetrainPolicy, bool]:
        _check(settings)
        deployment = await self.deployments.get(principal, name)
        existed = await self._read(principal.account.id, deployment.name) is not None
        training = {"training_type": settings.training_type, "nr_epochs": settings.nr_epochs}
        if settings.batch_size is not None:
            training["batch_size"] = settings.batch_size

        def write() -> RetrainPolicy:
            with self.db.session() as s:
                return q.put_policy(
                    s,
                    deployment_id=deployment.id,
                    account_id=principal.account.id,
                    name=deployment.name,
                    dataset=settings.dataset,
                    task_type=settings.task_type,
                    min_corrections=settings.min_corrections,
                    margin=settings.margin,
                    holdout_fraction=settings.holdout_fraction,
                    training=training,
                )

        return await self.db.in_writer(write), not existed

    async def get(self, principal: Principal, name: str) -> RetrainPolicy:
        deployment = await self.deployments.get(principal, name)
        policy = await self._read(principal.account.id, deployment.name)
        if policy is None:
            raise NotFound(f"deployment '{deployment_model_id(deployment.name)}' has no retrain policy")
        return policy

    async def delete(self, principal: Principal, name: str) -> None:
        policy = await self.get(principal, name)

        def write() -> bool:
            with self.db.session() as s:
                return q.delete_policy(s, policy.deployment_id)

        await self.db.in_writer(write)

    async def retrain_now(self, principal: Principal, name: str) -> RetrainPolicy:
        """Start a run now, whatever the number of new corrections (409 while one runs)."""
        policy = await self.get(principal, name)
        if policy.run is not None and policy.run.get("stage") in ("training", "evaluating"):
            raise Conflict(f"a retrain of '{deployment_model_id(policy.deployment)}' is running: {policy.run['stage']}")
        await self._start(policy)
        return await self.get(principal, name)

    # -- the worker's periodic check ---------------------------------------------------------------------
    async def tick(self) -> bool:
        """Advance every running run and start the runs whose corrections have arrived."""

        def read() -> list[RetrainPolicy]:
            with self.db.session() as s:
                return q.all_policies(s)

        for policy in await asyncio.to_thread(read):
            try:
                stage = (policy.run or {}).get("stage")
                if stage in ("training", "evaluating"):
                    await self._advance(policy)
                elif await self._corrections(policy) >= policy.min_corrections:
                    await self._start(policy)
            except Exception:
                log.exception("retrain policy of deployment %s failed a step", policy.deployment_id)
        return False

    async def _corrections(self, policy: RetrainPolicy) -> int:
        def read() -> int:
            with self.db.session() as s:
                model_id = deployment_model_id(policy.deployment)
                return q.count_corrections(s, policy.account_id, model_id, policy.corrections_since)

        return await asyncio.to_thread(read)

    async def _principal(self, account_id: str) -> Principal:
        def read() -> Principal | None:
            with self.db.session() as s:
                return account_principal(s, account_id)

        principal = await asyncio.to_thread(read)
        if principal is None:
            raise NotFound(f"account '{account_id}' not found")
        return principal

    async def _write_run(self, policy: RetrainPolicy, run: dict[str, Any], **extra: Any) -> bool:
        def write() -> bool:
            with self.db.session() as s:
                return q.advance(s, policy, run=run, **extra)

        return await self.db.in_writer(write)

    async def _start(self, policy: RetrainPolicy) -> None:
        principal = await self._principal(policy.account_id)
        deployment = await self.deployments.get(principal, policy.deployment)
        started = now()
        # Claim the run first: a second worker's check sees the new revision and leaves it alone.
        run: dict[str, Any] = {"stage": "building", "started_at": started.isoformat(), "serving": deployment.target}
        if not await self._write_run(policy, run, corrections_since=started):
            return
        policy = await self._read(policy.account_id, policy.deployment)
        try:
            run = await self._build_and_train(principal, policy, run)  # type: ignore[arg-type]
        except OutriderError as exc:
            run = {**run, "stage": "done", "outcome": "failed", "reason": exc.message}
        await self._write_run(policy, run)  # type: ignore[arg-type]

    async def _build_and_train(self, principal: Principal, policy: RetrainPolicy, run: dict) -> dict[str, Any]:
        request = BuildRequest(
            FeedbackFilter(model_id=deployment_model_id(policy.deployment), human_verdict="reviewed"),
            task_type=policy.task_type,
        )
        built = await self.feedback_data.build(principal, policy.dataset, request)
        if built.version is None or built.added == 0:
            return {**run, "stage": "done", "outcome": "nothing new", "reason": "no new reviewed records to learn from"}
        examples = (await asyncio.to_thread(self.datasets.read_all, built.version))[-built.added :]
        run["built"] = {"dataset": policy.dataset, "version": built.version.version, "added": built.added}
        account_id = policy.account_id
        train_name, holdout_name = f"{policy.dataset}-train", f"{policy.dataset}-holdout"
        earlier_train = await self._latest(account_id, train_name)
        earlier_held = await self._latest(account_id, holdout_name)
        train, held = split(examples, policy.holdout_fraction, holdout_empty=not earlier_held)
        if (not earlier_train and not train) or (not earlier_held and not held):
            reason = "too few examples to train on and hold out (at least 2 the first time)"
            return {**run, "stage": "done", "outcome": "nothing new", "reason": reason}
        saved = {}
        for name, earlier, new in ((train_name, earlier_train, train), (holdout_name, earlier_held, held)):
            if new:
                _, version = await self.datasets.save_examples(
                    account_id, name, policy.task_type, earlier + new, source="inferences"
                )
                saved[name] = version.version
            else:
                saved[name] = (await self.datasets.version(account_id, name, None))[1].version
        run["train"] = {"dataset": train_name, "version": saved[train_name], "added": len(train)}
        run["holdout"] = {"dataset": holdout_name, "version": saved[holdout_name], "added": len(held)}
        training = policy.training
        job = await self.training.create(
            principal,
            TrainingRequest(
                model_name=f"{policy.deployment}-retrain",
                base_model=run["serving"],
                datasets=[DatasetRef(train_name, saved[train_name])],
                training_type=training.get("training_type", "full"),
                nr_epochs=training.get("nr_epochs"),
                batch_size=training.get("batch_size"),
                validation_fraction=0.0,
            ),
        )
        return {**run, "stage": "training", "training_job": job.id}

    async def _latest(self, account_id: str, name: str) -> list[dict]:
        try:
            _, version = await self.datasets.version(account_id, name, None)
        except NotFound:
            return []
        return await asyncio.to_thread(self.datasets.read_all, version)

    async def _advance(self, policy: RetrainPolicy) -> None:
        run = dict(policy.run or {})
        key = "training_job" if run["stage"] == "training" else "evaluation"
        try:
            job = await self.jobs.get(policy.account_id, run[key])
        except NotFound:
            run.update(stage="done", outcome="failed", reason=f"job {run[key]} was deleted")
            await self._write_run(policy, run)
            return
        if job.status in PENDING:
            return
        if job.status != "complete":
            run.update(stage="done", outcome="failed", reason=f"{job.kind} job {job.id} {job.status}: {job.error}")
        elif run["stage"] == "training":
            principal = await self._principal(policy.account_id)
            holdout = run["holdout"]
            try:
                evaluation = await self.evaluations.create(
                    principal,
                    EvaluationRequest([run["serving"], job.id], holdout["dataset"], holdout["version"]),
                )
                run.update(stage="evaluating", candidate=job.id, evaluation=evaluation.id)
            except OutriderError as exc:
                run.update(stage="done", outcome="failed", reason=exc.message)
        else:
            run.update(await self._decide(policy, run, job.result or {}))
        await self._write_run(policy, run)

    async def _decide(self, policy: RetrainPolicy, run: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        comparisons = result.get("comparisons") or [{}]
        better, reason = decide(policy.task_type, comparisons[0], policy.margin)
        target = run["candidate"] if better else run["serving"]
        note = f"retrain {run['candidate']} (evaluation {run['evaluation']}): {reason}"
        changed = await self.deployments.by_policy(
            policy.account_id, policy.deployment, expected=run["serving"], target=target, note=note[:2000]
        )
        if changed is None:
            return {"stage": "done", "outcome": "kept", "reason": "the deployment was switched meanwhile; left alone"}
        return {"stage": "done", "outcome": "switched" if better else "kept", "reason": reason}
