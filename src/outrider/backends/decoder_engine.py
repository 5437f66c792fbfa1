"""Batched, streaming generation for a ``transformers`` causal LM, run on one dedicated model thread.

``model.generate`` serves one request per call and returns only at the end. Chat serving needs both
concurrency and streaming, so this engine runs its own decode loop: requests that arrive while the engine
is idle are collected for up to ``max_wait_s`` (or until ``max_batch``), prefilled together as one
left-padded batch, then decoded one token per step for every active row, reusing the KV cache. Each row
samples with its own parameters and generator, finishes on its own, and streams its text to the event
loop as it is produced. Batching is static: requests that arrive mid-batch start with the next batch,
which begins as soon as the running one ends.

All model work happens on the engine's thread; the event loop only enqueues requests and reads chunks.

LoRA adapters (``decoder_adapters.py``) share this engine and its base weights: once one is loaded, forward
passes go through the ``peft`` wrapper with one adapter name per row, so rows of one batch may each use a
different adapter or none (``"__base__"``: the base layers alone, exactly the computation without peft).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from outrider.core.messages import (
    ChatMessage,
    FinishReason,
    GenerationChunk,
    GenerationParams,
    GenerationResult,
    TokenLogprob,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

_INCOMPLETE = "\ufffd"  # what the tokenizer renders for a UTF-8 sequence that later tokens complete
_MAX_TOP_LOGPROBS = 20
BASE_ADAPTER = "__base__"  # peft's name for "no adapter" in a mixed batch


class TokenConstraint(Protocol):
    """Restricts which tokens a row may produce (e.g. a JSON grammar); used only on the engine thread."""

    def mask_logits(self, logits: torch.Tensor) -> None:
        """Set the logits of disallowed tokens to -inf, in place (1-D tensor over the vocabulary)."""

    def advance(self, token_id: int) -> None:
        """Record the token the row produced."""

    def is_done(self) -> bool:
        """True once the constrained output is complete; the row then finishes with 'stop'."""


def encode_chat(tokenizer: Any, messages: list[ChatMessage]) -> list[int]:
    """Prompt ids for a chat, through the model's own chat template, ending where the assistant speaks."""
    encoded = tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in messages], add_generation_prompt=True, return_dict=True
    )
    return list(encoded["input_ids"])


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Prompt ids for a raw completion: no template, only the tokenizer's own special tokens (e.g. BOS)."""
    return list(tokenizer(text)["input_ids"])


class EngineStream:
    """One request's output, filled from the engine thread; implements ``GenerationStream``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, prompt_tokens: int) -> None:
        self.prompt_tokens = prompt_tokens
        self._loop = loop
        # Created on the loop thread; the engine thread only ever reaches it through call_soon_threadsafe.
        self._queue: asyncio.Queue[GenerationChunk | GenerationResult | BaseException] = asyncio.Queue()
        self._cancelled = threading.Event()
        self._result: GenerationResult | None = None
        self._error: BaseException | None = None
        self._iterated = False

    async def __aiter__(self) -> AsyncIterator[GenerationChunk]:
        if self._iterated:
            raise RuntimeError("an EngineStream can be iterated only once")
        self._iterated = True
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, GenerationChunk):
                    yield item
                elif isinstance(item, GenerationResult):
                    self._result = item
                    return
                else:
                    self._error = item
                    raise item
        finally:
            # The consumer stopped early (e.g. the client disconnected and the response was closed).
            if self._result is None and self._error is None:
                self.cancel()

    @property
    def result(self) -> GenerationResult:
        if self._error is not None:
            raise self._error
        if self._result is None:
            raise RuntimeError("the stream has not finished; iterate it first")
        return self._result

    async def wait_result(self) -> GenerationResult:
        """The final result, also after the consumer stopped iterating early (e.g. after ``cancel``):
        drains whatever the engine still posts until the row's result arrives."""
        while self._result is None and self._error is None:
            item = await self._queue.get()
            if isinstance(item, GenerationResult):
                self._result = item
            elif isinstance(item, BaseException):
                self._error = item
        return self.result

    async def collect(self) -> GenerationResult:
        """Drain the stream and return its result, for callers that do not stream."""
        async for _ in self:
            pass
        return self.result

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _post(self, item: GenerationChunk | GenerationResult | BaseException) -> None:
        """Engine thread: hand an item to the loop. If the loop is gone nobody listens, so stop the row."""
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:
            self._cancelled.set()


@dataclass
class _Request:
    prompt_ids: list[int]
    params: GenerationParams
    constraint_factory: Callable[[], TokenConstraint] | None
    stream: EngineStream
    adapter: str | None = None  # a LoRA adapter loaded into this engine, or None for the base model
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class _Row:
    """Engine-thread state of one request inside a running batch."""

    request: _Request
    generator: torch.Generator | None
    constraint: TokenConstraint | None
    tokens: list[int] = field(default_factory=list)  # produced text tokens (EOS excluded)
    count: int = 0  # completion tokens, EOS included (as model.generate counts them)
    text: str = ""
    sent: int = 0  # characters of ``text`` already delivered
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finished: bool = False


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters must wait: an incomplete character, or what could begin a stop string."""
    end = len(text)
    while end and text[end - 1] == _INCOMPLETE:
        end -= 1
    safe = end
    for stop in stops:
        for k in range(min(len(stop) - 1, end), 0, -1):
            if text.endswith(stop[:k], 0, end):
                safe = min(safe, end - k)
                break
    return len(text) - safe


def _find_stop(text: str, stops: tuple[str, ...]) -> tuple[int, str] | None:
    """The earliest stop string in the text, with its index."""
    hits = [(text.find(stop), stop) for stop in stops if stop and stop in text]
    return min(hits) if hits else None


def _sample(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> int:
    """Greedy at temperature 0; otherwise temperature scaling plus nucleus (top-p) sampling."""
    import torch

    if temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p >= 1.0:
        return int(torch.multinomial(probs, 1, generator=generator))
    sorted_probs, order = probs.sort(descending=True)
    # Keep the smallest prefix whose mass reaches top_p; the best token always survives (its prior mass is 0).
    keep = (sorted_probs.cumsum(-1) - sorted_probs) < top_p
    choice = torch.multinomial(sorted_probs * keep, 1, generator=generator)
    return int(order[choice])


class DecoderEngine:
    """Serves concurrent generation requests for one model, batched and streamed, on one daemon thread."""

    def __init__(self, model: Any, tokenizer: Any, *, max_batch: int = 8, max_wait_s: float = 0.01) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos_ids = eos if isinstance(eos, list | tuple) else [eos]
        self.eos_ids = {int(t) for t in [*eos_ids, tokenizer.eos_token_id] if t is not None}
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else min(self.eos_ids, default=0))
        self.vocab_size = int(model.get_input_embeddings().num_embeddings)
        # Only the last position's logits are needed; computing all of them costs a [batch, prompt, vocab] tensor.
        self._logits_kwargs = (
            {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
        )
        self.batch_sizes: deque[int] = deque(maxlen=256)  # recent batch sizes (observable in tests and metrics)
        self.on_batch: Callable[[int], None] | None = None  # told each batch's size, on the engine thread
        # Set on the engine thread when the first LoRA adapter is loaded: the peft wrapper around ``model``
        # (which then holds LoRA layers) and the names of the adapters it holds.
        self.peft_model: Any = None
        self.adapters: set[str] = set()
        self._pending: deque[_Request] = deque()
        self._tasks: deque[tuple[Callable[[], Any], Future]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="decoder-engine", daemon=True)
        self._thread.start()

    def submit(
        self,
        prompt_ids: list[int],
        params: GenerationParams,
        constraint_factory: Callable[[], TokenConstraint] | None = None,
        adapter: str | None = None,
    ) -> EngineStream:
        """Queue a generation and return its stream at once; call from the event loop that will read it."""
        if adapter is not None and adapter not in self.adapters:
            raise ValueError(f"adapter '{adapter}' is not loaded in this engine")
        if not prompt_ids:
            raise ValueError("the prompt has no tokens")
        if min(prompt_ids) < 0 or max(prompt_ids) >= self.vocab_size:
            raise ValueError(f"prompt token ids must lie in [0, {self.vocab_size})")
        if params.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        stream = EngineStream(asyncio.get_running_loop(), len(prompt_ids))
        with self._cond:
            if self._closed:
                raise RuntimeError("the decoder engine is closed")
            self._pending.append(_Request(list(prompt_ids), params, constraint_factory, stream, adapter))
            self._cond.notify()
        return stream

    @property
    def pending(self) -> int:
        """Generations queued for a decode batch that has not started."""
        return len(self._pending)

    def run_on_thread(self, fn: Callable[[], Any]) -> Future:
        """Run ``fn`` on the engine thread between batches (e.g. loading an adapter, which rewrites modules
        that a running forward pass uses); the future holds its result or exception."""
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the decoder engine is closed")
            self._tasks.append((fn, future))
            self._cond.notify()
        return future

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread after the running batch; requests still waiting fail."""
        with self._cond:
            self._closed = True
            waiting = list(self._pending)
            self._pending.clear()
            tasks = list(self._tasks)
            self._tasks.clear()
            self._cond.notify()
        for request in waiting:
            request.stream._post(RuntimeError("the decoder engine was closed"))
        for _, future in tasks:
            if future.set_running_or_notify_cancel():
                future.set_exception(RuntimeError("the decoder engine was closed"))
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # --- engine thread -------------------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            self._run_tasks()
            batch = self._next_batch()
            if batch is None:
                return
            if not batch:  # woken for a task only
                continue
            try:
                self._run_batch(batch)
            except Exception as exc:  # never let the thread die: fail only this batch's streams
                log.exception("decoder batch setup failed")
                for request in batch:
                    request.stream._post(exc)

    def _run_tasks(self) -> None:
        while True:
            with self._cond:
                if not self._tasks:
                    return
                fn, future = self._tasks.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

    def _next_batch(self) -> list[_Request] | None:
        with self._cond:
            while not self._pending and not self._tasks and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            if not self._pending:
                return []
            # Give concurrent arrivals until the oldest request's deadline to join; a queue that built up
            # while the last batch ran is already past its deadline and starts at once.
            deadline = self._pending[0].enqueued + self.max_wait_s
            while len(self._pending) < self.max_batch and not self._closed:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return [self._pending.popleft() for _ in range(min(self.max_batch, len(self._pending)))]

    def _start_row(self, request: _Request, device: torch.device) -> _Row | None:
        """Per-request setup; a failure here (e.g. in the constraint factory) fails only this request."""
        import torch

        if request.stream.cancelled:
            self._finish(_Row(request, None, None), "cancelled")
            return None
        try:
            if request.adapter is not None and request.adapter not in self.adapters:  # unloaded since submit
                raise RuntimeError(f"adapter '{request.adapter}' is no longer loaded")
            generator = None
            if request.params.temperature > 0:
                generator = torch.Generator(device=device)
                if request.params.seed is not None:
                    generator.manual_seed(request.params.seed)
                else:
                    generator.seed()  # a fresh generator's default seed is a constant
            constraint = request.constraint_factory() if request.constraint_factory else None
            return _Row(request, generator, constraint)
        except Exception as exc:
            request.stream._post(exc)
            return None

    def _run_batch(self, batch: list[_Request]) -> None:
        import torch

        device = self.model.device
        rows = [row for row in (self._start_row(r, device) for r in batch) if row is not None]
        if not rows:
            return
        self.batch_sizes.append(len(rows))
        if self.on_batch is not None:
            self.on_batch(len(rows))
        # Left padding puts every prompt's last token in the final column, so one logits column serves every
        # row and each new token is simply appended on the right.
        prompts = [row.request.prompt_ids for row in rows]
        width = max(len(p) for p in prompts)
        input_ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        # Positions count real tokens only, so a padded row sees the same positions as it would alone
        # (pads get a dummy position; the mask hides them).
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
        model, adapter_names = self.model, None
        if self.peft_model is not None:  # the LoRA layers need to be told which adapter each row uses
            model, adapter_names = self.peft_model, [row.request.adapter or BASE_ADAPTER for row in rows]
        cache = None
        try:
            with torch.inference_mode():
                while rows:
                    out = model(
                        input_ids=input_ids,
                        attention_mask=mask,
                        position_ids=positions,
                        past_key_values=cache,
                        use_cache=True,
                        **self._logits_kwargs,
                        **({"adapter_names": adapter_names} if adapter_names else {}),
                    )
                    cache = out.past_key_values  # holds keys/values of every column so far, pads included
                    next_ids = self._step(rows, out.logits[:, -1, :].float())
                    keep = [i for i, row in enumerate(rows) if not row.finished]
                    if not keep:
                        break
                    if len(keep) < len(rows):
                        # Drop finished rows from the batch (and the cache) so later steps cost less.
                        index = torch.tensor(keep, dtype=torch.long, device=device)
                        cache.batch_select_indices(index)
                        rows = [rows[i] for i in keep]
                        next_ids = [next_ids[i] for i in keep]
                        if adapter_names:
                            adapter_names = [adapter_names[i] for i in keep]
                        mask, positions = mask[index], positions[index]
                    input_ids = torch.tensor(next_ids, device=device).unsqueeze(1)
                    # The mask covers the cache plus the new column; the new token's position follows its row's last.
                    mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
                    positions = positions[:, -1:] + 1
        except Exception as exc:  # a failed forward pass fails every row still running in it
            log.exception("decoder batch failed")
            for row in rows:
                if not row.finished:
                    row.finished = True
                    row.request.stream._post(exc)

    def _step(self, rows: list[_Row], logits: torch.Tensor) -> list[int]:
        """Choose and record one token per row; returns the chosen ids (finished rows included, ignored later)."""
        import torch

        greedy = logits.argmax(dim=-1).tolist()
        wants_logprobs = any(row.request.params.logprobs for row in rows)
        logprobs = torch.log_softmax(logits, dim=-1) if wants_logprobs else None
        chosen: list[int] = []
        for i, row in enumerate(rows):
            params = row.request.params
            token = greedy[i]
            try:
                if row.constraint is not None or params.temperature > 0:
                    scores = logits[i]
                    if row.constraint is not None:
                        scores = scores.clone()
                        row.constraint.mask_logits(scores)
                        if not torch.isfinite(scores).any():
                            raise RuntimeError("the constraint allows no token")
                    token = _sample(scores, params.temperature, params.top_p, row.generator)
                entry = None
                if params.logprobs and logprobs is not None:
                    entry = self._logprob(logprobs[i], token, params.top_logprobs)
                self._accept(row, token, entry)
            except Exception as exc:  # a bad constraint or sampling error fails only this row
                row.finished = True
                row.request.stream._post(exc)
            chosen.append(token)
        return chosen

    def _logprob(self, row_logprobs: torch.Tensor, token: int, top: int) -> TokenLogprob:
        """Log-probabilities from the raw logits (before temperature and constraint), as OpenAI reports them."""
        alternatives: tuple[tuple[str, float], ...] = ()
        if top > 0:
            values, ids = row_logprobs.topk(min(top, _MAX_TOP_LOGPROBS))
            alternatives = tuple(
                (self.tokenizer.decode([t]), v) for t, v in zip(ids.tolist(), values.tolist(), strict=True)
            )
        return TokenLogprob(self.tokenizer.decode([token]), float(row_logprobs[token]), alternatives)

    def _accept(self, row: _Row, token: int, logprob: TokenLogprob | None) -> None:
        """Record a token, stream whatever text is now safe, and finish the row when a limit is reached."""
        request, params = row.request, row.request.params
        row.count += 1
        if row.constraint is not None:
            row.constraint.advance(token)
        if token in self.eos_ids:  # EOS carries no text and gets no logprob entry
            self._finish(row, "stop")
            return
        row.tokens.append(token)
        if logprob is not None:
            row.logprobs.append(logprob)
        # Re-decoding the whole completion keeps multi-token characters and merges right; it is cheap next
        # to a forward pass. Without clean-up, the decoded text only ever grows at the end.
        row.text = self.tokenizer.decode(row.tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        found = _find_stop(row.text, params.stop)
        if found is not None:
            row.text = row.text[: found[0]]
            self._finish(row, "stop_sequence", found[1], logprob)
        elif row.constraint is not None and row.constraint.is_done():
            self._finish(row, "stop", None, logprob)
        elif row.count >= params.max_tokens:
            self._finish(row, "length", None, logprob)
        elif request.stream.cancelled:
            self._finish(row, "cancelled", None, logprob)
        else:
            safe = len(row.text) - _held_back(row.text, params.stop)
            delta = row.text[row.sent : safe] if safe > row.sent else ""
            if delta or logprob is not None:
                row.sent += len(delta)
                request.stream._post(GenerationChunk(delta, (logprob,) if logprob else ()))

    def _finish(
        self, row: _Row, reason: FinishReason, stop: str | None = None, logprob: TokenLogprob | None = None
    ) -> None:
        """Deliver the rest of the text (what was held back) and the final result."""
        row.finished = True
        stream = row.request.stream
        delta = row.text[row.sent :]
        if delta or logprob is not None:
            stream._post(GenerationChunk(delta, (logprob,) if logprob else ()))
        row.sent = len(row.text)
        stream._post(
            GenerationResult(
                text=row.text,
                finish_reason=reason,
                prompt_tokens=len(row.request.prompt_ids),
                completion_tokens=row.count,
                stop_sequence=stop,
                logprobs=tuple(row.logprobs),
            )
        )
