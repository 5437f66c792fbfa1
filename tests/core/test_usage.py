"""Prices with prompt-cache rates: exact micro-dollar costs and reservations that bound them."""

import itertools

from outrider.core.usage import Price, Usage


def test_cached_prompt_tokens_cost_their_own_rates_rounded_once():
    price = Price(1.5, 4.0, 0.15, 1.875)
    # 3 uncached x 1.5 + 6 read x 0.15 + 2 written x 1.875 + 3 output x 4.0 = 21.15 micro-dollars
    assert price.cost_micro_usd(11, 3, cache_read_tokens=6, cache_write_tokens=2) == 21
    assert price.cost_micro_usd(11, 3) == round(11 * 1.5 + 3 * 4.0)


def test_without_cache_prices_cached_tokens_cost_the_input_price():
    price = Price(2.0, 8.0)
    assert (price.cache_read, price.cache_write) == (2.0, 2.0)
    assert price.cost_micro_usd(100, 10, 60, 30) == price.cost_micro_usd(100, 10) == 280


def test_the_reservation_bound_covers_any_split_of_the_prompt():
    price = Price(3.0, 15.0, 0.3, 3.75)  # a cache write costs more than plain input
    bound = price.bound_micro_usd(40, 7)
    for read, write in itertools.product(range(41), repeat=2):
        if read + write <= 40:
            assert price.cost_micro_usd(40, 7, read, write) <= bound
    assert price.cost_micro_usd(40, 7, 0, 40) == bound


def test_anthropic_input_tokens_leave_the_cached_ones_out():
    usage = Usage(11, 3, 0, cache_read_tokens=6, cache_write_tokens=2)
    assert (usage.uncached_prompt_tokens, usage.total_tokens) == (3, 14)
