"""The names routing speaks: task types, complexity levels, optimisation modes, and their accepted aliases."""

from __future__ import annotations

from typing import Literal

from outrider.core.errors import InvalidRequest

TaskType = Literal[
    "code",
    "math",
    "analysis",
    "summarization",
    "extraction",
    "classification",
    "translation",
    "creative_writing",
    "chat",
    "question_answering",
]
Complexity = Literal["simple", "medium", "complex"]
OptimizeMode = Literal["balanced", "quality", "cost", "latency"]

TASKS: tuple[TaskType, ...] = (
    "code",
    "math",
    "analysis",
    "summarization",
    "extraction",
    "classification",
    "translation",
    "creative_writing",
    "chat",
    "question_answering",
)
COMPLEXITIES: tuple[Complexity, ...] = ("simple", "medium", "complex")
MODES: tuple[OptimizeMode, ...] = ("balanced", "quality", "cost", "latency")

# Other names clients send for the same task (the seed's own example says "code_generation").
TASK_ALIASES: dict[str, TaskType] = {
    "code_generation": "code",
    "coding": "code",
    "programming": "code",
    "mathematics": "math",
    "reasoning": "analysis",
    "summarisation": "summarization",
    "summary": "summarization",
    "information_extraction": "extraction",
    "entity_extraction": "extraction",
    "ner": "extraction",
    "categorization": "classification",
    "sentiment": "classification",
    "creative": "creative_writing",
    "writing": "creative_writing",
    "conversation": "chat",
    "qa": "question_answering",
    "question-answering": "question_answering",
}
MODE_ALIASES: dict[str, OptimizeMode] = {"best_quality": "quality", "cheapest": "cost", "fastest": "latency"}


def normalize_task(name: str, *, param: str = "routing.task") -> TaskType:
    """The canonical task type for a name or alias (case-insensitive); 422 for anything else."""
    key = name.strip().lower().replace(" ", "_")
    if key in TASKS:
        return key  # type: ignore[return-value]
    if key in TASK_ALIASES:
        return TASK_ALIASES[key]
    raise InvalidRequest(f"unknown task {name!r}; expected one of {', '.join(TASKS)}", param=param)


def normalize_mode(name: str, *, param: str = "routing.optimize") -> OptimizeMode:
    """The canonical optimisation mode for a name or alias (case-insensitive); 422 for anything else."""
    key = name.strip().lower().replace(" ", "_")
    if key in MODES:
        return key  # type: ignore[return-value]
    if key in MODE_ALIASES:
        return MODE_ALIASES[key]
    raise InvalidRequest(f"unknown optimize mode {name!r}; expected one of {', '.join(MODES)}", param=param)
