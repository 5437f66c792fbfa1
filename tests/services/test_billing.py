"""Credit reservations: batched, exact under concurrency, and never left held by a caller that went away."""

import asyncio

import pytest

from outrider.app_state import build_services
from outrider.config import build_settings
from outrider.core.errors import InsufficientCredits
from outrider.core.usage import Price
from tests.waiting import wait_until_async


@pytest.fixture
def billing_setup(tmp_path):
    services = build_services(build_settings(data_dir=tmp_path / "data"))
    account, issued = services.accounts.create_account("metered")
    services.billing.grant(created_by="test", account_id=account.id, account_name=None, amount_usd=1.0)
    who = services.accounts.authenticate(issued.raw_key)
    yield services, who
    services.close()


PRICE = Price(1_000_000.0, 0.0)  # $1 per token: one prompt token reserves $1 (the whole balance)


def test_concurrent_reservations_in_one_batch_never_over_reserve(billing_setup):
    services, who = billing_setup
    cents = Price(10_000.0, 0.0)  # one token reserves $0.01: exactly 100 fit

    async def run() -> list[object]:
        asks = [services.billing.reserve(who, cents, 1, 0) for _ in range(150)]
        return await asyncio.gather(*asks, return_exceptions=True)

    outcomes = asyncio.run(run())
    assert sum(not isinstance(o, Exception) for o in outcomes) == 100
    assert all(isinstance(o, InsufficientCredits) for o in outcomes if isinstance(o, Exception))
    balance = services.billing.balance(who)
    assert (balance.balance_micro_usd, balance.reserved_micro_usd) == (1_000_000, 1_000_000)


def test_a_caller_cancelled_while_its_reservation_commits_leaves_nothing_held(billing_setup):
    services, who = billing_setup
    released = []
    release = services.billing.release

    async def spy(hold):
        released.append(hold.amount)
        await release(hold)

    services.billing.release = spy

    async def run() -> None:
        task = asyncio.create_task(services.billing.reserve(who, PRICE, 1, 0))
        await asyncio.sleep(0)  # queued; the batch is being written
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The reservation commits, then is released for the departed caller.
        await wait_until_async(
            lambda: (
                released and services.billing.balance(who).reserved_micro_usd == 0 and not services.billing._background
            ),
            what="the departed caller's reservation to be released",
        )

    asyncio.run(run())
    balance = services.billing.balance(who)
    assert (balance.balance_micro_usd, balance.reserved_micro_usd) == (1_000_000, 0)
    assert released == [1_000_000]  # the queued reservation did commit, and was handed back

    async def again() -> None:  # the whole balance can be reserved again
        hold = await services.billing.reserve(who, PRICE, 1, 0)
        assert hold is not None and hold.amount == 1_000_000

    asyncio.run(again())
