"""What the teacher is asked, and the JSON schema its answer must follow.

Prompts are short and literal: the local default teacher has 135M parameters. Variety comes from the
request plan (a topic and a style per request, drawn by the seed), not from asking the teacher to be varied.
The schemas carry regular expressions that constrained decoding enforces token by token on local models
(no markup, no line breaks in texts, entity values in the text): they cost nothing at run time and turn the
most common failures of a small model into outputs that cannot occur. Upstream teachers get the same schema
through JSON mode, described in the prompt, and the same checks afterwards (``quality``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from outrider.synthesis.quality import BANNED_CHARS

STYLES = (
    "a short news report",
    "a customer review",
    "a casual chat message",
    "a sentence from a business email",
    "a social media post",
    "a question someone asks",
    "a line from a meeting note",
    "a complaint",
    "a short announcement",
    "a diary entry",
    "a product description",
    "a text message to a friend",
    "a sentence from a report",
    "a forum reply",
)
DECODER_STYLES = (
    "a direct question",
    "a how-to question",
    "a question with some context",
    "a question asking for advice",
    "a question asking for an explanation",
    "a question asking for a short list",
    "a question comparing two options",
    "a question about a problem",
)
# Generic angles on any domain: used next to the teacher's own topics, and alone when it gives none.
ANGLES = (
    "an everyday situation",
    "a recent event",
    "a problem someone had",
    "plans for the future",
    "a comparison of two options",
    "prices and numbers",
    "the people and organisations involved",
    "a surprising detail",
    "a first experience",
    "a change that happened",
)
DEFAULT_DOMAIN = "everyday life, work, news and online conversations"

_REGEX_META = set("\\.+*?()|[]{}^$#&-~")
# Escaping only regex metacharacters: llguidance reads other escapes differently (``\\<`` is a word boundary).
_BANNED = "".join("\\" + c if c in _REGEX_META else c for c in BANNED_CHARS)
_TEXT_CHAR = f"[^{_BANNED}\\n\\r\\t]"  # plain text: no markup, no line breaks
_WORD_CHAR = f"[^ {_BANNED}\\n\\r\\t]"
LEAD_WORDS = 8
TEXT_PATTERN = f"^[^\\s{_BANNED}]{_TEXT_CHAR}*$"
ANSWER_PATTERN = f"^[^\\s{_BANNED}][^{_BANNED}]*$"  # an assistant answer may span lines
VALUE_PATTERN = r"^[\w$€£#@][\w .&'/:$€£%+@-]*$"
TOPIC_PATTERN = r"^\w[\w ,&'-]*$"


def regex_literal(value: str) -> str:
    """``value`` as a regular expression matching it literally (valid for llguidance and Python ``re``)."""
    return "".join("\\" + c if c in _REGEX_META else c for c in value)


@dataclass(frozen=True)
class Ask:
    """One question for the teacher: the prompt, the schema of the answer, and its token budget."""

    prompt: str
    schema: dict[str, Any]
    max_tokens: int


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _string(pattern: str) -> dict[str, Any]:
    return {"type": "string", "pattern": pattern}


def _shape(schema: dict[str, Any]) -> str:
    """A one-line example of the answer's shape, for teachers that are not constrained by the schema."""

    def sample(node: dict[str, Any]) -> Any:
        if node.get("type") == "object":
            return {key: sample(value) for key, value in node["properties"].items()}
        if node.get("type") == "array":
            return [sample(node["items"])]
        return "..."

    return json.dumps(sample(schema), ensure_ascii=False)


def _finish(prompt: str, schema: dict[str, Any], max_tokens: int) -> Ask:
    return Ask(f"{prompt}\nAnswer with only this JSON: {_shape(schema)}", schema, max_tokens)


def topics_ask(domain: str) -> Ask:
    schema = _object({"topics": {"type": "array", "items": _string(TOPIC_PATTERN), "minItems": 4, "maxItems": 10}})
    return _finish(f"List 10 different specific subtopics of this domain: {domain}.", schema, 140)


def entity_values_ask(domain: str, topic: str, style: str, labels: list[str]) -> Ask:
    """Stage one of an NER example: a realistic value for each chosen entity type."""
    kinds = ", ".join(f'"{label}"' for label in labels)
    prompt = (
        f"Domain: {domain}. Topic: {topic}.\n"
        f"Invent one realistic, specific name or value for each entity type ({kinds}) that could appear in "
        f"{style} about this topic."
    )
    schema = _object({label: _string(VALUE_PATTERN) for label in labels})
    return _finish(prompt, schema, 12 + 14 * len(labels))


def ner_text_ask(domain: str, topic: str, style: str, values: list[tuple[str, str]]) -> Ask:
    """Stage two: a text that mentions the stage-one values; values it leaves out are dropped from the example.

    The pattern makes one of the values appear verbatim within the first ``LEAD_WORDS`` words, wherever the
    model chooses to put it there. Measured on SmolLM2-135M, 8 tries each: demanding every value anywhere left
    6 rambling to the token limit; "any one value, anywhere" 2; "any one within 8 words" none, in half the time.
    """
    mentions = " and ".join(f'the {label} "{value}"' for label, value in values)
    prompt = (
        f"Domain: {domain}. Topic: {topic}.\n"
        f"Write {style} (one or two sentences) that mentions {mentions}, written exactly like that. "
        "Mention no other names."
    )
    any_value = "|".join(regex_literal(value) for _, value in values)
    pattern = f"^(?:{_WORD_CHAR}+ ){{0,{LEAD_WORDS}}}(?:{any_value}){_TEXT_CHAR}*$"
    return _finish(prompt, _object({"text": _string(pattern)}), 72)


def classification_ask(
    domain: str, topic: str, style: str, label: str, labels: list[str], shots: list[dict[str, Any]]
) -> Ask:
    others = ", ".join(f'"{other}"' for other in labels if other != label)
    lines = [f"Domain: {domain}. Topic: {topic}."]
    if shots:
        lines.append("Examples of labelled texts:")
        lines.extend(f'- "{shot["text"]}" -> {shot["label"]}' for shot in shots)
    lines.append(
        f'Write {style} (one or two sentences) whose label is clearly "{label}"'
        + (f" and not {others}." if others else ".")
    )
    return _finish("\n".join(lines), _object({"text": _string(TEXT_PATTERN)}), 72)


def decoder_ask(instruction: str, domain: str | None, topic: str, style: str) -> Ask:
    """A user turn and the assistant's answer. Keys "user"/"assistant" made SmolLM2 write user *names*;
    "question"/"answer" gets questions and answers."""
    lines = [f"Task: {instruction}"]
    if domain:
        lines.append(f"Domain: {domain}.")
    lines.append(f"Write one example for this task: {style} from a user about {topic}, and a helpful, correct answer.")
    schema = _object({"question": _string(TEXT_PATTERN), "answer": _string(ANSWER_PATTERN)})
    return _finish("\n".join(lines), schema, 200)
