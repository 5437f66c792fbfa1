"""Token usage and USD cost, shared by every surface."""

from __future__ import annotations

from dataclasses import dataclass

MICRO_USD = 1_000_000


@dataclass(frozen=True)
class Price:
    """USD per million input and output tokens."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0

    def cost_micro_usd(self, prompt_tokens: int, completion_tokens: int) -> int:
        """Exact cost in micro-dollars (integer: credits never drift through float sums)."""
        # price per token in micro-USD = price_per_mtok (USD / 1e6 tokens) * 1e6 micro / 1e6 = price_per_mtok
        return round(prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cost_micro_usd: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_usd(self) -> float:
        return self.cost_micro_usd / MICRO_USD
