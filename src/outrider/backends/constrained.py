"""JSON-constrained decoding for local Hugging Face decoders, through ``llguidance``.

Why: a small local model asked for JSON wraps it in prose or markdown, or breaks it off. Masking each step's logits
with a grammar compiled from the request's schema makes every *completed* output parse with ``json.loads`` and
validate against the schema. Given the sequence's ``max_tokens``, the last steps steer towards closing what is
open, so a rambling small model still ends with complete JSON; without it, a cut-off sequence is incomplete.

Usage, one factory per loaded tokenizer and one constraint per generated sequence::

    factory = JsonConstraintFactory(tokenizer)           # ~0.5 s: builds the llguidance token trie
    new_constraint = factory.for_schema(schema_or_none)  # per request: compiles (and caches) the grammar
    constraint = new_constraint(max_tokens=256)          # per sequence: a cheap copy of the compiled matcher
    while not constraint.is_done():
        constraint.mask_logits(logits)                   # disallowed tokens -> -inf, in place
        constraint.advance(sampled_token_id)
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema
import llguidance
import llguidance.hf
import llguidance.torch
import numpy as np
import torch

from outrider.core.errors import BackendError, InvalidRequest

__all__ = ["JsonConstraint", "JsonConstraintFactory", "validate_response_schema"]

# OpenAI's json_object mode: any JSON object, nothing else.
ANY_JSON_OBJECT: dict[str, Any] = {"type": "object"}

# Applied after the schema's own "x-guidance" options, so a request cannot loosen them. No free whitespace: a
# small model otherwise pads with newlines and indentation for ever; the separators keep the one space models
# naturally write. Not lenient: a keyword llguidance cannot enforce is rejected, not silently ignored, because
# the output must validate against the schema.
JSON_OPTIONS: dict[str, Any] = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
    "lenient": False,
}

PUNCTUATION = frozenset(b'"{}[]:, ')
CLOSING_MARGIN = 8  # room for a pending key, its colon and a short value before the brackets close
COMMA_COST = 3  # a comma while closing commits to another key and value (or item): about three more tokens
GRAMMAR_CACHE_SIZE = 64  # compiled grammars kept per tokenizer: requests often repeat one schema
MAX_REASON_CHARS = 120  # of llguidance's error text in a client's message (the rest is parser state and grammar)


def validate_response_schema(schema: dict) -> None:
    """Reject a ``response_format`` schema that is not valid JSON Schema (2020-12) before any model work."""
    if not isinstance(schema, dict):
        raise InvalidRequest("response_format schema must be a JSON object", param="response_format")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = exc.json_path if exc.path else "the schema root"
        raise InvalidRequest(
            f"response_format schema is not a valid JSON Schema: {exc.message} (at {where})",
            param="response_format",
        ) from None


def _reason(error: object) -> str:
    """The first line of llguidance's error, shortened: the full text appends the parser's state and the whole
    grammar (hundreds of characters of internals that say nothing to a client)."""
    line = str(error).strip().split("\n", 1)[0].strip()
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 3] + "..."


def _scan(data: bytes, depth: int, in_string: bool, escaped: bool) -> tuple[int, bool, bool]:
    """Follow JSON nesting through some output bytes; the grammar guarantees they are valid JSON so far."""
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b"{[":
            depth += 1
        elif byte in b"}]":
            depth -= 1
    return depth, in_string, escaped


def _closing_cost(data: bytes, in_string: bool) -> int:
    """How a punctuation token changes the work left to close: open strings and brackets, plus its commas."""
    commas, depth, inside, escaped = 0, 0, in_string, False
    for index, byte in enumerate(data):
        commas += byte == 0x2C and not inside
        depth, inside, escaped = _scan(data[index : index + 1], depth, inside, escaped)
    return depth + inside - in_string + COMMA_COST * commas


@dataclass(frozen=True)
class _Vocabulary:
    """What every constraint of one tokenizer shares; built once by the factory."""

    tokenizer: llguidance.LLTokenizer
    eos_tokens: np.ndarray
    punct_ids: np.ndarray  # tokens made only of JSON punctuation and spaces: the candidates when closing
    punct_cost: np.ndarray  # [started in a string?, i]: change in tokens still needed to close after punct_ids[i]

    @classmethod
    def build(cls, tokenizer: llguidance.LLTokenizer) -> _Vocabulary:
        ids, costs = [], []
        for token in range(tokenizer.vocab_size):
            data = tokenizer.decode_bytes([token])
            if data and set(data) <= PUNCTUATION and not tokenizer.is_special_token(token):
                ids.append(token)
                costs.append([_closing_cost(data, bool(start)) for start in (0, 1)])
        return cls(
            tokenizer,
            np.array(tokenizer.eos_tokens, dtype=np.int64),
            np.array(ids, dtype=np.int64),
            np.array(costs, dtype=np.int64).reshape(-1, 2).T.copy(),
        )


class JsonConstraint:
    """The grammar state of one generated sequence; not thread-safe (one decode worker drives it).

    With ``max_tokens``, the last few steps keep only the allowed tokens that close strings and brackets soonest,
    so a model rambling in a long object still ends with complete JSON instead of being cut off mid-value.
    """

    def __init__(self, matcher: llguidance.LLMatcher, vocab: _Vocabulary, max_tokens: int | None = None) -> None:
        self._matcher, self._vocab, self._max_tokens = matcher, vocab, max_tokens
        # Reused every step; plain (not pinned) memory: a pinned buffer per sequence costs more than it saves.
        self._bitmask = torch.zeros(
            llguidance.torch.get_bitmask_shape(1, vocab.tokenizer.vocab_size), dtype=torch.int32
        )
        self._produced, self._depth, self._in_string, self._escaped = 0, 0, False, False

    def mask_logits(self, logits: torch.Tensor) -> None:
        """Set every token the grammar forbids next to -inf, in place; EOS stays only once the JSON is complete."""
        if logits.dim() != 1:
            raise ValueError(f"mask_logits expects 1-D logits, got shape {tuple(logits.shape)}")
        llguidance.torch.fill_next_token_bitmask(self._matcher, self._bitmask)
        self._raise_if_error()
        allowed = np.unpackbits(self._bitmask[0].numpy().view(np.uint8), bitorder="little")  # 1 byte per token
        if self._closing():
            allowed = self._closing_tokens(allowed)
        forbidden = np.ones(logits.shape[0], dtype=np.bool_)  # logits padded past the vocabulary stay forbidden
        size = min(logits.shape[0], allowed.shape[0])
        np.equal(allowed[:size], 0, out=forbidden[:size])
        if logits.device.type == "cpu" and logits.dtype in (torch.float32, torch.float64) and not logits.requires_grad:
            logits.numpy()[forbidden] = -np.inf  # numpy: no thread-pool hand-off, steady on a busy CPU
        else:
            logits.masked_fill_(torch.from_numpy(forbidden).to(logits.device), float("-inf"))

    def advance(self, token_id: int) -> None:
        """Consume the sampled token; a token the mask forbade means the caller sampled unmasked logits."""
        token_id = int(token_id)
        if token_id in self._vocab.eos_tokens and self._matcher.is_stopped():
            return  # the loop may feed the final EOS after is_done(): nothing left to check
        if not self._matcher.consume_token(token_id):
            self._raise_if_error()
            raise BackendError(f"constrained decoding rejected token {token_id}")
        self._produced += 1
        if not self._vocab.tokenizer.is_special_token(token_id):
            data = self._vocab.tokenizer.decode_bytes([token_id])
            self._depth, self._in_string, self._escaped = _scan(data, self._depth, self._in_string, self._escaped)

    def is_done(self) -> bool:
        """True once the JSON value is complete (or EOS was consumed): the sequence must stop now."""
        return self._matcher.is_stopped()

    def _closing(self) -> bool:
        """Whether the budget left only just covers closing what is open (plus a key's colon and a value)."""
        if self._max_tokens is None or self._escaped:
            return False
        return self._max_tokens - self._produced <= self._depth + self._in_string + CLOSING_MARGIN

    def _closing_tokens(self, allowed: np.ndarray) -> np.ndarray:
        """Of the allowed tokens, EOS, else the punctuation that leaves the fewest strings and brackets open.

        Where none is allowed (an integer, a required key or enum value to write) the grammar's mask stands.
        """
        vocab = self._vocab
        eos = vocab.eos_tokens[allowed[vocab.eos_tokens] == 1]
        candidates = np.flatnonzero(allowed[vocab.punct_ids])
        if eos.size == 0 and candidates.size == 0:
            return allowed
        if eos.size == 0:
            cost = vocab.punct_cost[int(self._in_string), candidates]
            keep = vocab.punct_ids[candidates[cost == cost.min()]]
        else:
            keep = eos
        closing = np.zeros_like(allowed)
        closing[keep] = 1
        return closing

    def _raise_if_error(self) -> None:
        if self._matcher.is_error():
            raise BackendError(f"constrained decoding failed: {_reason(self._matcher.get_error())}")


class JsonConstraintFactory:
    """Built once per loaded tokenizer: the llguidance tokenizer (token trie) is the expensive part."""

    def __init__(self, hf_tokenizer: Any) -> None:
        try:
            # json_slices: a trie partition tuned for JSON grammars, about 3x faster masks than the general one.
            self._tokenizer = llguidance.hf.from_tokenizer(hf_tokenizer, slices=llguidance.LLTokenizer.json_slices())
        except ValueError as exc:  # a slow (pure Python) tokenizer
            raise BackendError(f"constrained decoding needs a fast tokenizer: {exc}") from exc
        self._vocab = _Vocabulary.build(self._tokenizer)  # ~20 ms: one scan of the vocabulary
        self._matchers: OrderedDict[str, llguidance.LLMatcher] = OrderedDict()
        self._lock = threading.Lock()  # for_schema may be called from request threads

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.vocab_size

    def for_schema(self, schema: dict | None) -> Callable[..., JsonConstraint]:
        """A constructor of per-sequence constraints; schema None means any JSON object (json_object mode).

        Compiles here, once per request, so an unusable schema fails before generation starts. Call the result as
        ``new_constraint()`` or ``new_constraint(max_tokens=n)``; with the budget, output closes before it runs out.
        """
        if schema is not None:
            validate_response_schema(schema)
        template = self._compiled(ANY_JSON_OBJECT if schema is None else schema)
        vocab = self._vocab

        def new_constraint(max_tokens: int | None = None) -> JsonConstraint:
            return JsonConstraint(template.deep_copy(), vocab, max_tokens)

        return new_constraint

    def _admits_a_first_token(self, matcher: llguidance.LLMatcher) -> bool:
        """Compute the first step's mask on a copy (once per compiled schema: microseconds): a grammar with no
        allowed first token, or that errors, can never produce output."""
        probe = matcher.deep_copy()
        bitmask = torch.zeros(llguidance.torch.get_bitmask_shape(1, self._tokenizer.vocab_size), dtype=torch.int32)
        llguidance.torch.fill_next_token_bitmask(probe, bitmask)
        return not probe.is_error() and bool(bitmask.any())

    def _compiled(self, schema: dict) -> llguidance.LLMatcher:
        """A freshly compiled matcher that is never advanced itself, only copied (copies cost microseconds)."""
        key = json.dumps(schema, sort_keys=True)
        with self._lock:
            if key in self._matchers:
                self._matchers.move_to_end(key)
                return self._matchers[key]
        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, overrides=JSON_OPTIONS)
        except (ValueError, TypeError) as exc:
            raise InvalidRequest(
                f"response_format schema cannot be used: {_reason(exc)}", param="response_format"
            ) from None
        matcher = llguidance.LLMatcher(self._tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise InvalidRequest(
                f"response_format schema is not supported for constrained decoding: {_reason(matcher.get_error())}",
                param="response_format",
            )
        if not self._admits_a_first_token(matcher):
            # e.g. {"$ref": "#"}: valid JSON Schema, but it only refers to itself, so no JSON value matches it.
            # llguidance compiles it and fails at the first mask; found here, it is the client's 422, not a 502.
            raise InvalidRequest(
                'response_format schema admits no JSON value (it may only refer to itself, like {"$ref": "#"})',
                param="response_format",
            )
        with self._lock:
            self._matchers[key] = matcher
            while len(self._matchers) > GRAMMAR_CACHE_SIZE:
                self._matchers.popitem(last=False)
        return matcher
