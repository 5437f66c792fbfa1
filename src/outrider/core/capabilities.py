"""What a request needs a model to be able to do, and the refusal when the model cannot.

Each surface's conversion computes the request's required capabilities (``required_capabilities``): ``vision``
when a message carries an image, ``tools`` when tools are offered and ``tool_choice`` is not ``none``. A named
model lacking one answers ``CapabilityMissing`` (400); ``model: "auto"`` only considers models that have them all.
Capabilities are declared per model (``ModelSpec.capabilities``: the providers file for upstreams, the kind's
defaults for local models).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from outrider.core.errors import CapabilityMissing
from outrider.core.messages import ChatMessage

VISION = "vision"
TOOLS = "tools"
_NEEDED_FOR = {VISION: "image inputs", TOOLS: "tool calling"}


def required_capabilities(messages: Sequence[ChatMessage] | None, *, tools: bool = False) -> frozenset[str]:
    """``vision`` when any message carries an image; ``tools`` when the request offers tools it may call."""
    needed = set()
    if messages and any(m.parts and m.images for m in messages):
        needed.add(VISION)
    if tools:
        needed.add(TOOLS)
    return frozenset(needed)


def tools_requested(tools: Sequence[object] | None, tool_choice: object) -> bool:
    """Tools offered and not switched off: ``tool_choice`` ``"none"`` (OpenAI) or ``{"type": "none"}`` (Anthropic)."""
    if not tools:
        return False
    choice = tool_choice.get("type") if isinstance(tool_choice, dict) else tool_choice
    return choice != "none"


def missing_capabilities(declared: Iterable[str], required: Iterable[str]) -> list[str]:
    have = set(declared)
    return sorted(c for c in required if c not in have)


def capability_missing(model_id: str, declared: Sequence[str], missing: Sequence[str]) -> CapabilityMissing:
    needs = ", ".join(f"'{c}' (needed for {_NEEDED_FOR.get(c, c)})" for c in missing)
    return CapabilityMissing(
        f"model '{model_id}' does not have the {needs} capability (its capabilities: {list(declared)}); "
        'send the request to a model that declares it, or use model "auto"',
        param="model",
    )


def no_capable_model(required: Sequence[str], pool: Sequence[str]) -> CapabilityMissing:
    needs = ", ".join(f"'{c}' (for {_NEEDED_FOR.get(c, c)})" for c in sorted(required))
    return CapabilityMissing(
        f"model 'auto' found no model with the {needs} capability this request needs "
        f"in its pool ({', '.join(pool) or 'none'})",
        param="model",
    )
