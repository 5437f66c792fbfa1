"""Token usage and USD cost, shared by every surface.

Prompt caching: ``prompt_tokens`` counts every input token, cached or not (OpenAI's convention); of those,
``cache_read_tokens`` were read from a provider's prompt cache and ``cache_write_tokens`` were written to it
(Anthropic's ``cache_read_input_tokens`` / ``cache_creation_input_tokens``; OpenAI reports reads only, as
``prompt_tokens_details.cached_tokens``). Each kind is priced at its own rate; a model without cache prices
charges cached tokens at its input price.
"""

from __future__ import annotations

from dataclasses import dataclass

MICRO_USD = 1_000_000


@dataclass(frozen=True)
class Price:
    """USD per million input and output tokens, and per million cache-read and cache-write input tokens (None:
    the input price)."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None

    @property
    def cache_read(self) -> float:
        return self.input_per_mtok if self.cache_read_per_mtok is None else self.cache_read_per_mtok

    @property
    def cache_write(self) -> float:
        return self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok

    def cost_micro_usd(
        self, prompt_tokens: int, completion_tokens: int, cache_read_tokens: int = 0, cache_write_tokens: int = 0
    ) -> int:
        """Exact cost in micro-dollars (integer: credits never drift through float sums). Cache reads and writes
        are part of ``prompt_tokens``; the rest of the prompt is charged at the input price."""
        # price per token in micro-USD = price_per_mtok (USD / 1e6 tokens) * 1e6 micro / 1e6 = price_per_mtok
        uncached = max(prompt_tokens - cache_read_tokens - cache_write_tokens, 0)
        return round(
            uncached * self.input_per_mtok
            + cache_read_tokens * self.cache_read
            + cache_write_tokens * self.cache_write
            + completion_tokens * self.output_per_mtok
        )

    def bound_micro_usd(self, prompt_tokens: int, completion_tokens: int) -> int:
        """The most a call of this size can cost, however its prompt turns out cached (for reservations)."""
        prompt_price = max(self.input_per_mtok, self.cache_read, self.cache_write)
        return round(prompt_tokens * prompt_price + completion_tokens * self.output_per_mtok)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cost_micro_usd: int = 0
    cache_read_tokens: int = 0  # of prompt_tokens
    cache_write_tokens: int = 0  # of prompt_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def uncached_prompt_tokens(self) -> int:
        """Input tokens neither read from nor written to a cache (Anthropic's ``input_tokens``)."""
        return max(self.prompt_tokens - self.cache_read_tokens - self.cache_write_tokens, 0)

    @property
    def cost_usd(self) -> float:
        return self.cost_micro_usd / MICRO_USD
