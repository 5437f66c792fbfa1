"""The ``evaluation`` job: each model answers every example of the pinned dataset version as it is served,
one call per example (timed), then is scored; with several models, each later one is compared with the
first. Each model's figures are written to the job's result as soon as it is done."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from outrider.core.schema import parse_schema
from outrider.core.usage import MICRO_USD
from outrider.evaluation.compare import compare
from outrider.evaluation.scoring import ExampleScores, evaluation_schema, gold_records, latency_figures, score
from outrider.jobs.registry import JobContext, JobHandlers, StopRequested
from outrider.services.catalog import ModelCatalog
from outrider.services.datasets import DatasetService
from outrider.services.evaluations import EVALUATION_JOB_KIND

PROGRESS_EVERY = 10  # examples between two progress writes (each is also a look at the stop flag)


@dataclass(frozen=True)
class EvaluationJobDeps:
    """What an evaluation job uses, built by ``build_services``."""

    catalog: ModelCatalog  # the models, resolved for the job's account and loaded as they are served
    datasets: DatasetService  # the pinned version's examples


async def _answers(
    ctx: JobContext, deps: EvaluationJobDeps, model: dict[str, Any], schema: Any, texts: list[str], position: int
) -> tuple[list[dict], list[float], int, Any]:
    """The model's raw results for ``texts``, the latency of each call and the tokens read."""
    spec = await deps.catalog.model_for(model["model_used"], ctx.job.account_id, param="models")
    loaded = await deps.catalog.load(spec)
    prepared = loaded.model.prepare(schema)
    threshold = ctx.payload["threshold"]
    results, latencies, tokens = [], [], 0
    for index, text in enumerate(texts):
        if index % PROGRESS_EVERY == 0:
            await ctx.progress(model=position, model_id=model["model_id"], example=index, examples=len(texts))
            if ctx.should_stop():
                raise StopRequested("stopped on request")
        started = time.perf_counter()
        output = await loaded.batcher.extract([text], [prepared], threshold)
        latencies.append((time.perf_counter() - started) * 1000)
        results.append(output.results[0])
        tokens += output.token_counts[0]
    return results, latencies, tokens, spec


async def run_evaluation(deps: EvaluationJobDeps, ctx: JobContext) -> dict[str, Any]:
    payload = ctx.payload
    pinned = payload["dataset"]
    task_type = pinned["task_type"]
    _, version = await deps.datasets.version(ctx.job.account_id, pinned["name"], pinned["version"])
    examples = (await asyncio.to_thread(deps.datasets.read_all, version))[: pinned["examples"]]
    labels = payload.get("labels") or sorted(version.label_stats)
    schema = parse_schema(evaluation_schema(task_type, labels, examples))
    records = gold_records(task_type, labels, examples)
    texts = [record["input"] for record in records]
    done: list[dict[str, Any]] = []
    scores: list[ExampleScores] = []
    for position, model in enumerate(payload["models"], start=1):
        results, latencies, tokens, spec = await _answers(ctx, deps, model, schema, texts, position)
        figures, example_scores = await asyncio.to_thread(score, task_type, records, results)
        cost = spec.price.cost_micro_usd(tokens, 0) / MICRO_USD
        done.append(
            {
                **model,
                "examples": len(records),
                "metrics": figures,
                "latency_ms": latency_figures(latencies),
                "tokens": tokens,
                "cost_usd": round(cost, 6),
                "cost_usd_per_example": round(cost / (len(records) or 1), 9),
            }
        )
        scores.append(example_scores)
        await ctx.set_result(models=done)
    comparisons = []
    for index in range(1, len(done)):
        compared = await asyncio.to_thread(
            compare, scores[0], scores[index], done[0]["metrics"]["per_label"], done[index]["metrics"]["per_label"]
        )
        comparisons.append({"baseline": done[0]["model_id"], "candidate": done[index]["model_id"], **compared})
    await ctx.progress(model=len(done), example=len(records), examples=len(records))
    return {"models": done, "comparisons": comparisons}


def register(handlers: JobHandlers, deps: EvaluationJobDeps) -> None:
    handlers.register(EVALUATION_JOB_KIND, partial(run_evaluation, deps))
