"""How one example of each task type is made: ask the teacher, clean and check its answer.

A producer returns a ``Candidate`` (an example that passed every check that needs only itself) or a
``Rejected`` with the reason. What needs the whole set (duplicates, label quotas) is decided by the engine.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from outrider.core.usage import Usage
from outrider.synthesis.prompts import (
    ANGLES,
    DECODER_STYLES,
    DEFAULT_DOMAIN,
    STYLES,
    classification_ask,
    decoder_ask,
    entity_values_ask,
    ner_text_ask,
    topics_ask,
)
from outrider.synthesis.quality import (
    Mention,
    clean_text,
    clean_value,
    locate_entities,
    text_problem,
    trim_to_sentence,
    value_problem,
)
from outrider.synthesis.teacher import Teacher, TeacherReply

MAX_SHOT_CHARS = 200
MAX_ENTITY_SHARE = 0.6  # of an NER text's characters
NER_LABELS_PER_EXAMPLE = (1, 2, 2, 3)  # drawn per example: mostly two entity types, sometimes one or three


@dataclass
class Slot:
    """One planned example: what to ask for, and the seed of its sampling."""

    seed: int
    topic: str
    style: str
    labels: list[str] = field(default_factory=list)  # classification: [the target label]; ner: entity types


@dataclass(frozen=True)
class Candidate:
    example: dict[str, Any]
    key: str  # the text duplicates are judged on
    dropped_mentions: int = 0  # NER: entity values the text did not contain


@dataclass(frozen=True)
class Rejected:
    reason: str


class Producer:
    """Shared state of one synthesis run's producers: the teacher, the topics, usage, value counts."""

    def __init__(self, teacher: Teacher, task_type: str, num_examples: int, rng: random.Random) -> None:
        self.teacher = teacher
        self.task_type = task_type
        self.rng = rng
        self.usage = Usage(0, 0)
        self.topics: list[str] = list(ANGLES)
        self.value_counts: Counter[str] = Counter()
        # A weak teacher names the same "John Smith" again and again: each value may back a few examples only.
        self.max_value_uses = max(2, math.ceil(0.01 * num_examples))

    async def ask(self, ask: Any, seed: int) -> TeacherReply:
        reply = await self.teacher.ask(ask, seed=seed)
        u = reply.usage
        self.usage = Usage(
            self.usage.prompt_tokens + u.prompt_tokens,
            self.usage.completion_tokens + u.completion_tokens,
            self.usage.cost_micro_usd + u.cost_micro_usd,
        )
        return reply

    async def load_topics(self, domain: str, seed: int) -> None:
        """Domain-specific topics from the teacher, next to the generic angles (which stay as a fallback)."""
        reply = await self.ask(topics_ask(domain), seed)
        raw = (reply.data or {}).get("topics")
        found: dict[str, str] = {}
        for item in raw if isinstance(raw, list) else []:
            topic = clean_value(item) if isinstance(item, str) else ""
            if 3 <= len(topic) <= 80 and topic.casefold() != domain.casefold():
                found.setdefault(topic.casefold(), topic)
        self.topics = [*found.values(), *ANGLES]

    def plan(self, seed: int, labels: list[str]) -> Slot:
        styles = DECODER_STYLES if self.task_type == "decoder" else STYLES
        return Slot(seed, self.rng.choice(self.topics), self.rng.choice(styles), labels)


async def produce_ner(p: Producer, slot: Slot, domain: str) -> Candidate | Rejected:
    reply = await p.ask(entity_values_ask(domain, slot.topic, slot.style, slot.labels), slot.seed)
    if reply.data is None:
        return Rejected("invalid_json")
    values: list[tuple[str, str]] = []
    problems: list[str] = []
    for label in slot.labels:
        raw = reply.data.get(label)
        value = clean_value(raw) if isinstance(raw, str) else ""
        problem = value_problem(value, label, (domain, slot.topic))
        if problem is None and any(value.casefold() == v.casefold() for _, v in values):
            problem = "invalid_value"  # one string under two labels cannot be told apart in the text
        if problem is None and p.value_counts[value.casefold()] >= p.max_value_uses:
            problem = "repeated_value"
        if problem:
            problems.append(problem)
        else:
            values.append((label, value))
    if not values:
        return Rejected(problems[0])
    p.value_counts.update(v.casefold() for _, v in values)
    reply = await p.ask(ner_text_ask(domain, slot.topic, slot.style, values), slot.seed + 1)
    text = reply.data.get("text") if reply.data else None
    if not isinstance(text, str):
        return Rejected("invalid_json")
    text = clean_text(text)
    entities, missing = locate_entities(text, [Mention(value, label) for label, value in values])
    if not entities:
        return Rejected("span_not_in_text")
    text = trim_to_sentence(text, keep=max(e["end"] for e in entities))
    problem = text_problem(text)
    if problem:
        return Rejected(problem)
    if sum(e["end"] - e["start"] for e in entities) > MAX_ENTITY_SHARE * len(text):
        return Rejected("too_short")  # little more than the names themselves
    return Candidate({"text": text, "entities": entities}, text, dropped_mentions=len(missing))


async def produce_classification(
    p: Producer, slot: Slot, domain: str, labels: list[str], shots: list[dict[str, Any]]
) -> Candidate | Rejected:
    label = slot.labels[0]
    chosen = pick_shots(shots, label, p.rng)
    reply = await p.ask(classification_ask(domain, slot.topic, slot.style, label, labels, chosen), slot.seed)
    text = reply.data.get("text") if reply.data else None
    if not isinstance(text, str):
        return Rejected("invalid_json")
    text = trim_to_sentence(clean_text(text))
    problem = text_problem(text)
    if problem:
        return Rejected(problem)
    if any(text.casefold().startswith(name.casefold() + ":") for name in labels):
        return Rejected("prompt_echo")  # "Positive: ..." gives the answer away
    return Candidate({"text": text, "label": label}, text)


async def produce_decoder(p: Producer, slot: Slot, instruction: str, domain: str | None) -> Candidate | Rejected:
    reply = await p.ask(decoder_ask(instruction, domain, slot.topic, slot.style), slot.seed)
    data = reply.data or {}
    user, answer = data.get("question"), data.get("answer")
    if not isinstance(user, str) or not isinstance(answer, str):
        return Rejected("invalid_json")
    user = clean_text(user)
    answer = trim_to_sentence(answer.strip())
    # Answers may legitimately hold markup (code, lists); only the question is held to plain text.
    problem = text_problem(user) or text_problem(answer, allow_markup=True)
    if problem:
        return Rejected(problem)
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return Candidate({"messages": messages}, user)


def pick_shots(shots: list[dict[str, Any]], label: str, rng: random.Random, limit: int = 3) -> list[dict[str, Any]]:
    """Few-shot examples for one request: up to two of the target label and one of another, at random."""
    same = [s for s in shots if s["label"] == label]
    other = [s for s in shots if s["label"] != label]
    chosen = rng.sample(same, min(2, len(same))) + rng.sample(other, min(1, len(other)))
    return [{"text": s["text"][:MAX_SHOT_CHARS], "label": s["label"]} for s in chosen[:limit]]


def default_domain(domain: str | None) -> str:
    return (domain or "").strip() or DEFAULT_DOMAIN
