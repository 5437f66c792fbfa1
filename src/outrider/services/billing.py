"""Credits: reserve before a call, settle its exact cost after, grant, meter jobs, report usage.

A chargeable call first reserves an upper bound of its cost (402 ``InsufficientCredits`` when the
available balance cannot cover it, with nothing charged). When the call ends, whatever way it ends,
the recorder settles it in the same transaction that writes its usage record: the exact cost reported
in ``usage.cost`` is charged and the rest of the reservation freed. The bound is a true upper bound
(prompt tokens <= UTF-8 bytes of the prompt plus template overhead for byte-level tokenizers, the exact
token count for encoders, completion <= ``max_tokens`` per choice), so a charge never exceeds its
reservation and the balance never goes negative, however many calls run at once.

Accounts with ``unlimited_credits`` (the bootstrap admin) are metered in usage but never reserved
against or charged. Jobs are metered as they run with ``charge_job``, which takes at most what is left
and tells the job to stop when the balance runs out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from outrider.core.errors import InsufficientCredits, InvalidRequest, NotFound
from outrider.core.messages import ChatMessage
from outrider.core.usage import MICRO_USD, Price
from outrider.services.accounts import Principal
from outrider.storage.db import Database
from outrider.storage.group_commit import GroupCommit
from outrider.storage.queries import accounts as accounts_q
from outrider.storage.queries import billing as q
from outrider.storage.records import Balance, CreditTransaction, UsageRecord, UsageTotals

log = logging.getLogger(__name__)

TRANSACTION_KINDS = ("grant", "refund", "inference", "generation", "training")
# Chat templates add role markers and, for some models, a default system prompt.
TEMPLATE_OVERHEAD_TOKENS = 64
PER_MESSAGE_OVERHEAD_TOKENS = 16
# Vision models bill an image by its size, not its bytes: OpenAI's largest tiling and Anthropic's largest image
# (about 1,600 tokens) stay under this, so an image reserves it whatever its encoding.
IMAGE_TOKENS_BOUND = 3_000


@dataclass
class Hold:
    """Credit reserved for one call in flight; settled (or released) exactly once."""

    account_id: str
    amount: int
    done: bool = field(default=False)


def usd_to_micro(amount_usd: float) -> int:
    return round(amount_usd * MICRO_USD)


def prompt_token_bound(messages: list[ChatMessage] | None, prompt: str | None) -> int:
    """An upper bound on prompt tokens for byte-level BPE tokenizers (every token covers >= 1 byte)."""
    if messages is not None:
        size = sum(
            len(m.content.encode()) + PER_MESSAGE_OVERHEAD_TOKENS + IMAGE_TOKENS_BOUND * len(m.images) for m in messages
        )
    else:
        size = len((prompt or "").encode())
    return size + TEMPLATE_OVERHEAD_TOKENS


def charge_kind(surface: str) -> str:
    """The transaction kind of a call made through ``surface`` (jobs call models through their own)."""
    return {"generation-job": "generation", "training-job": "training"}.get(surface, "inference")


@dataclass(frozen=True)
class _Ask:
    """One reservation waiting for the next batch."""

    account_id: str
    amount: int


def _reserve_batch(session: Session, asks: list[_Ask]) -> list[Balance | None]:
    """The reservations in order, in the batch's transaction, by conditional ``UPDATE``s (so the balance can
    never be over-reserved): None when reserved, otherwise the balance that could not cover it."""
    reserved = q.reserve_many(session, [(a.account_id, a.amount) for a in asks])
    return [None if ok else q.get_balance(session, a.account_id) for a, ok in zip(asks, reserved, strict=True)]


class BillingService:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Concurrent calls on credit cost one commit instead of one each; a reservation is wanted only while
        # its caller waits.
        self._reservations: GroupCommit[_Ask, Balance | None] = GroupCommit(
            db, _reserve_batch, drop_when_caller_gone=True, reservations=True
        )
        self._background: set[asyncio.Task] = set()

    def clear_stale_reservations(self) -> None:
        with self.db.session() as s:
            cleared = q.clear_reservations(s)
        if cleared:
            log.warning("cleared credit reservations left by %d interrupted calls", cleared)

    async def reserve(
        self, principal: Principal, price: Price, prompt_tokens: int, completion_tokens: int
    ) -> Hold | None:
        """Reserve the most this call can cost; ``InsufficientCredits`` (402) when it cannot be covered."""
        if principal.account.unlimited_credits:
            return None
        amount = price.bound_micro_usd(prompt_tokens, completion_tokens)
        if amount <= 0:
            return None
        account_id = principal.account.id
        reserved = self._reservations.submit(_Ask(account_id, amount))
        try:
            short = await asyncio.shield(reserved)
        except asyncio.CancelledError:
            # The caller went away: a reservation committed anyway must not stay held.
            reserved.add_done_callback(self._release_orphan(account_id, amount))
            raise
        if short is not None:
            raise InsufficientCredits(
                f"insufficient credits: this call may cost up to ${amount / MICRO_USD:.6f} and the available "
                f"balance is ${max(short.available_micro_usd, 0) / MICRO_USD:.6f}; ask an admin for a credit grant"
            )
        return Hold(account_id, amount)

    def _release_orphan(self, account_id: str, amount: int) -> Callable[[asyncio.Future], None]:
        def on_done(future: asyncio.Future) -> None:
            if future.cancelled() or future.exception() is not None or future.result() is not None:
                return  # nothing was reserved
            task = asyncio.get_running_loop().create_task(self.release(Hold(account_id, amount)))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        return on_done

    async def release(self, hold: Hold | None) -> None:
        """Free a reservation whose call ended without being recorded (refused, or failed before running)."""
        if hold is None or hold.done:
            return
        hold.done = True

        def release() -> None:
            with self.db.session() as s:
                q.release(s, hold.account_id, hold.amount)

        try:
            await self.db.in_writer(release)
        except Exception:
            log.exception("could not release a credit reservation of %d for %s", hold.amount, hold.account_id)

    def balance(self, principal: Principal) -> Balance:
        with self.db.session() as s:
            found = q.get_balance(s, principal.account.id)
        if found is None:
            raise NotFound("account not found")
        return found

    def grant(
        self,
        *,
        created_by: str,
        account_id: str | None,
        account_name: str | None,
        amount_usd: float,
        kind: str = "grant",
        description: str | None = None,
        reference_id: str | None = None,
    ) -> CreditTransaction:
        amount = usd_to_micro(amount_usd)
        if amount <= 0:
            raise InvalidRequest("amount_usd must be positive (at least one micro-dollar)", param="amount_usd")
        if kind not in ("grant", "refund"):
            raise InvalidRequest("kind must be 'grant' or 'refund'", param="kind")
        with self.db.session() as s:
            if account_id:
                account = accounts_q.get_account(s, account_id)
            elif account_name:
                account = accounts_q.get_account_by_name(s, account_name)
            else:
                raise InvalidRequest("give account_id or account_name", param="account_id")
            if account is None:
                raise NotFound(f"account '{account_id or account_name}' not found")
            return q.add_credit(
                s,
                account.id,
                amount,
                kind=kind,
                description=description,
                created_by=created_by,
                reference_id=reference_id,
            )

    def transactions(
        self, principal: Principal, *, kind: str | None, limit: int, offset: int
    ) -> tuple[list[CreditTransaction], int]:
        if kind is not None and kind not in TRANSACTION_KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(TRANSACTION_KINDS)}", param="kind")
        with self.db.session() as s:
            return q.list_transactions(s, principal.account.id, kind=kind, limit=limit, offset=offset)

    def usage(
        self,
        principal: Principal,
        *,
        model_id: str | None = None,
        api_key_id: str | None = None,
        status: str | None = None,
        surface: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[UsageRecord], UsageTotals]:
        usage_filter = q.UsageFilter(
            account_id=principal.account.id,
            model_id=model_id,
            api_key_id=api_key_id,
            status=status,
            surface=surface,
            since=since,
            until=until,
        )
        with self.db.session() as s:
            return q.list_usage(s, usage_filter, limit=limit, offset=offset)

    def usage_batches(
        self, principal: Principal, *, batch: int = 5_000, **filters: str | datetime | None
    ) -> Iterator[list[UsageRecord]]:
        """Every usage record matching ``filters`` (those of ``usage``), newest first, in batches from one read
        (for exports of any size). Consume it on one thread: the read stays open until the last batch."""
        usage_filter = q.UsageFilter(account_id=principal.account.id, **filters)  # type: ignore[arg-type]
        with self.db.session() as s:
            yield from q.iter_usage(s, usage_filter, batch=batch)

    def charge_job(self, account_id: str, job_id: str, amount: int, *, kind: str, description: str) -> bool:
        """Meter a running job; False when the balance ran out (the job should stop cleanly)."""
        if amount <= 0:
            return True
        with self.db.session() as s:
            balance = q.get_balance(s, account_id)
            if balance is None:
                return False
            if balance.unlimited:
                return True
            charged, _ = q.charge_up_to(s, account_id, amount, kind=kind, reference_id=job_id, description=description)
        return charged == amount
