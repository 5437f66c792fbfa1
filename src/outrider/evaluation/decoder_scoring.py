"""How decoder models are scored: ``decoder`` dataset examples (chat messages) are asked without their last
answer, and the model's answer is compared with it.

Per example, three yes/no figures: ``exact_match`` (the answer equals the expected one after trimming white
space; when both parse as JSON, the parsed values are compared, so key order and spacing do not matter),
``json_valid`` (the answer parses as JSON) and, when the evaluation gives a JSON schema, ``schema_valid`` (it
parses and validates under the schema). Their means are the model's rates; the per-example rows feed the same
paired bootstrap as the extraction figures (``evaluation/compare.paired_bootstrap``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from outrider.evaluation.compare import RESAMPLES, paired_bootstrap

DECODER_FIGURES = ("exact_match", "json_valid", "schema_valid")


@dataclass(frozen=True)
class DecoderCase:
    """One example as asked: the conversation before the expected answer, and that answer."""

    messages: list[dict[str, str]]
    expected: str


def decoder_cases(examples: list[dict]) -> list[DecoderCase]:
    """The conversation up to its last assistant message, which is the expected answer."""
    cases = []
    for example in examples:
        messages = list(example["messages"])
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
        if last is None or last == 0:
            raise ValueError("every decoder example of an evaluated set ends with an assistant answer after a prompt")
        cases.append(DecoderCase(messages[:last], str(messages[last].get("content", ""))))
    return cases


def check_schema(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for the evaluation's JSON schema; ValueError when it is no valid schema."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"json_schema is not a valid JSON schema: {exc.message}") from None
    return Draft202012Validator(schema)


_NOT_JSON = object()


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return _NOT_JSON


def example_figures(expected: str, answer: str, validator: Draft202012Validator | None) -> list[float]:
    """[exact_match, json_valid, schema_valid] of one answer, each 0 or 1 (schema_valid 0 without a schema)."""
    got, wanted = _parsed(answer.strip()), _parsed(expected.strip())
    valid = got is not _NOT_JSON
    both_json = valid and wanted is not _NOT_JSON
    exact = got == wanted if both_json else answer.strip() == expected.strip()
    schema_valid = valid and validator is not None and validator.is_valid(got)
    return [float(exact), float(valid), float(schema_valid)]


def score_decoder(
    cases: list[DecoderCase], answers: list[str], schema: dict[str, Any] | None
) -> tuple[dict[str, Any], np.ndarray]:
    """The model's rates and its per-example rows (``rows[n, figure]``, figures as ``DECODER_FIGURES``)."""
    validator = check_schema(schema) if schema is not None else None
    rows = np.array(
        [example_figures(case.expected, answer, validator) for case, answer in zip(cases, answers, strict=True)],
        dtype=np.float64,
    ).reshape(len(cases), len(DECODER_FIGURES))
    means = rows.mean(axis=0) if len(cases) else np.zeros(len(DECODER_FIGURES))
    figures: dict[str, Any] = {
        "exact_match": round(float(means[0]), 6),
        "json_valid": round(float(means[1]), 6),
        "schema_valid": round(float(means[2]), 6) if schema is not None else None,
    }
    return figures, rows


def compare_decoders(
    baseline: np.ndarray, candidate: np.ndarray, *, with_schema: bool, resamples: int = RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """The paired bootstrap of each rate (candidate minus baseline)."""
    if baseline.shape != candidate.shape:
        raise ValueError("both models must be scored on the same examples")
    n = baseline.shape[0]
    figures: dict[str, Any] = {}
    if n:
        for index, name in enumerate(DECODER_FIGURES):
            if name == "schema_valid" and not with_schema:
                continue

            def rate(summed: np.ndarray, index: int = index) -> float:
                return float(summed[index]) / n

            figures[name] = paired_bootstrap(baseline, candidate, rate, resamples, seed)
    return {"figures": figures, "per_label": {}, "resamples": resamples, "examples": n}
