"""The ``evaluation`` job: each model answers every example of the pinned dataset version as it is served,
one call per example (timed), then is scored; with several models, each later one is compared with the
first. Each model's figures are written to the job's result as soon as it is done.

Encoders answer through the loaded model's micro-batcher, decoders through the loaded model's generation (local
or upstream, greedy, ``max_tokens``), without a usage record or a charge: ``cost_usd`` is what the calls would
cost. A decoder call that fails counts as a wrong, invalid answer (``metrics.errors`` counts them)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from outrider.backends.base import open_streams
from outrider.core.errors import OutriderError
from outrider.core.messages import ChatMessage, GenerationParams
from outrider.core.schema import parse_schema
from outrider.core.usage import MICRO_USD
from outrider.evaluation.compare import compare
from outrider.evaluation.decoder_scoring import DecoderCase, compare_decoders, decoder_cases, score_decoder
from outrider.evaluation.scoring import ExampleScores, evaluation_schema, gold_records, latency_figures, score
from outrider.jobs.registry import JobContext, JobHandlers, StopRequested
from outrider.services.catalog import ModelCatalog
from outrider.services.datasets import DatasetService
from outrider.services.evaluations import DECODER_TASK_TYPE, EVALUATION_JOB_KIND

PROGRESS_EVERY = 10  # examples between two progress writes (each is also a look at the stop flag)


@dataclass(frozen=True)
class EvaluationJobDeps:
    """What an evaluation job uses, built by ``build_services``."""

    catalog: ModelCatalog  # the models, resolved for the job's account and loaded as they are served
    datasets: DatasetService  # the pinned version's examples


async def _report(ctx: JobContext, model: dict[str, Any], position: int, index: int, examples: int) -> None:
    """Every PROGRESS_EVERY examples: write the progress and look at the stop flag."""
    if index % PROGRESS_EVERY == 0:
        await ctx.progress(model=position, model_id=model["model_id"], example=index, examples=examples)
        if ctx.should_stop():
            raise StopRequested("stopped on request")


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
        await _report(ctx, model, position, index, len(texts))
        started = time.perf_counter()
        output = await loaded.batcher.extract([text], [prepared], threshold)
        latencies.append((time.perf_counter() - started) * 1000)
        results.append(output.results[0])
        tokens += output.token_counts[0]
    return results, latencies, tokens, spec


async def _decoder_answers(
    ctx: JobContext, deps: EvaluationJobDeps, model: dict[str, Any], cases: list[DecoderCase], position: int
) -> tuple[list[str], list[float], int, int, int, Any]:
    """The model's answers, the latency of each call, prompt and completion tokens, and failed calls."""
    spec = await deps.catalog.model_for(model["model_used"], ctx.job.account_id, param="models")
    loaded = await deps.catalog.load(spec)
    params = GenerationParams(max_tokens=ctx.payload["max_tokens"], temperature=0.0, stream=False)
    answers, latencies, prompt_tokens, completion_tokens, errors = [], [], 0, 0, 0
    for index, case in enumerate(cases):
        await _report(ctx, model, position, index, len(cases))
        started = time.perf_counter()
        try:
            stream = loaded.model.start([ChatMessage(m["role"], m["content"]) for m in case.messages], params)
            await open_streams([stream])
            async for _ in stream:
                pass
            result = stream.result
        except OutriderError:
            errors += 1
            answers.append("")
        else:
            answers.append(result.text)
            prompt_tokens += result.prompt_tokens
            completion_tokens += result.completion_tokens
        latencies.append((time.perf_counter() - started) * 1000)
    return answers, latencies, prompt_tokens, completion_tokens, errors, spec


async def run_decoder_evaluation(deps: EvaluationJobDeps, ctx: JobContext, examples: list[dict]) -> dict[str, Any]:
    payload = ctx.payload
    schema = payload.get("json_schema")
    cases = decoder_cases(examples)
    done: list[dict[str, Any]] = []
    rows = []
    for position, model in enumerate(payload["models"], start=1):
        answers, latencies, prompt, completion, errors, spec = await _decoder_answers(ctx, deps, model, cases, position)
        figures, example_rows = score_decoder(cases, answers, schema)
        cost = spec.price.cost_micro_usd(prompt, completion) / MICRO_USD
        done.append(
            {
                **model,
                "examples": len(cases),
                "metrics": {**figures, "errors": errors},
                "latency_ms": latency_figures(latencies),
                "tokens": prompt + completion,
                "cost_usd": round(cost, 6),
                "cost_usd_per_example": round(cost / (len(cases) or 1), 9),
            }
        )
        rows.append(example_rows)
        await ctx.set_result(models=done)
    comparisons = [
        {
            "baseline": done[0]["model_id"],
            "candidate": done[index]["model_id"],
            **compare_decoders(rows[0], rows[index], with_schema=schema is not None),
        }
        for index in range(1, len(done))
    ]
    await ctx.progress(model=len(done), example=len(cases), examples=len(cases))
    return {"models": done, "comparisons": comparisons}


async def run_evaluation(deps: EvaluationJobDeps, ctx: JobContext) -> dict[str, Any]:
    payload = ctx.payload
    pinned = payload["dataset"]
    task_type = pinned["task_type"]
    _, version = await deps.datasets.version(ctx.job.account_id, pinned["name"], pinned["version"])
    examples = (await asyncio.to_thread(deps.datasets.read_all, version))[: pinned["examples"]]
    if task_type == DECODER_TASK_TYPE:
        return await run_decoder_evaluation(deps, ctx, examples)
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
