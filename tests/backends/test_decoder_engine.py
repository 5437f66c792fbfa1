"""The batched streaming decoder engine, on the real SmolLM2-135M (greedy or seeded, short outputs)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from outrider.backends.decoder_engine import DecoderEngine, EngineStream, encode_chat, encode_prompt
from outrider.backends.decoder_hf import SMOLLM2_ID, ensure_smollm2_base
from outrider.core.messages import ChatMessage, GenerationChunk, GenerationParams
from tests.waiting import wait_until_async

GREEDY = GenerationParams(max_tokens=16, temperature=0)
FRANCE = "What is the capital of France?"
STORY = "Write a long story about a dragon who learns to fly."


@pytest.fixture(scope="module")
def model_and_tokenizer(base_models_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = ensure_smollm2_base(base_models_dir / SMOLLM2_ID.replace("/", "--"))
    model = AutoModelForCausalLM.from_pretrained(str(path))
    model.eval()
    return model, AutoTokenizer.from_pretrained(str(path))


@pytest.fixture(scope="module")
def engine(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    engine = DecoderEngine(model, tokenizer, max_batch=8, max_wait_s=0.05)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def tokenizer(model_and_tokenizer):
    return model_and_tokenizer[1]


def chat(tokenizer, text: str) -> list[int]:
    return encode_chat(tokenizer, [ChatMessage("user", text)])


async def drain(stream: EngineStream) -> list[GenerationChunk]:
    return [chunk async for chunk in stream]


class DigitsConstraint:
    """A stand-in for the grammar constraint: only digits for ``digits`` tokens, then only EOS."""

    def __init__(self, tokenizer, digits: int = 3, done_after_digits: bool = False) -> None:
        self.allowed = tokenizer.convert_tokens_to_ids([str(d) for d in range(10)])
        self.eos = tokenizer.eos_token_id
        self.digits, self.done_after_digits = digits, done_after_digits
        self.seen: list[int] = []
        self.threads: set[str] = set()

    def mask_logits(self, logits) -> None:
        self.threads.add(threading.current_thread().name)
        keep = self.allowed if len(self.seen) < self.digits else [self.eos]
        saved = logits[keep].clone()
        logits.fill_(float("-inf"))
        logits[keep] = saved

    def advance(self, token_id: int) -> None:
        self.seen.append(token_id)

    def is_done(self) -> bool:
        return self.done_after_digits and len(self.seen) >= self.digits


class ExplodingConstraint(DigitsConstraint):
    def mask_logits(self, logits) -> None:
        raise ValueError("constraint exploded")


async def test_greedy_matches_unbatched_generate(engine, model_and_tokenizer, tokenizer):
    import torch

    model = model_and_tokenizer[0]
    ids = chat(tokenizer, FRANCE)
    result = await engine.submit(ids, GenerationParams(max_tokens=24, temperature=0)).collect()
    with torch.inference_mode():
        output = model.generate(
            torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.eos_token_id,
        )  # fmt: skip
    expected = tokenizer.decode(output[0][len(ids) :], skip_special_tokens=True)
    assert "Paris" in result.text
    assert result.text == expected
    assert result.finish_reason == "stop"
    assert result.prompt_tokens == len(ids)
    assert result.completion_tokens == len(output[0]) - len(ids)


async def test_concurrent_requests_share_a_batch_and_match_solo_runs(engine, tokenizer):
    prompts = [FRANCE, "Name three colors.", "What is 2+2?", "Write a haiku about rain."]
    solo = [(await engine.submit(chat(tokenizer, p), GREEDY).collect()).text for p in prompts]
    streams = [engine.submit(chat(tokenizer, p), GREEDY) for p in prompts]
    together = await asyncio.gather(*(s.collect() for s in streams))
    assert [r.text for r in together] == solo
    assert engine.batch_sizes[-1] == 4  # one left-padded batch, not four runs


async def test_chunks_stream_incrementally_and_concatenate_to_the_text(engine, tokenizer):
    stream = engine.submit(chat(tokenizer, STORY), GREEDY)
    with pytest.raises(RuntimeError):
        _ = stream.result  # not finished yet
    arrivals: list[float] = []
    chunks: list[GenerationChunk] = []
    async for chunk in stream:
        arrivals.append(time.perf_counter())
        chunks.append(chunk)
    finished = time.perf_counter()
    assert len(chunks) > 1
    assert "".join(c.text for c in chunks) == stream.result.text
    assert finished - arrivals[0] > 0.05  # the first token came long before the last step
    assert stream.result.finish_reason == "length"
    assert stream.result.completion_tokens == GREEDY.max_tokens


async def test_max_tokens_finishes_with_length(engine, tokenizer):
    result = await engine.submit(chat(tokenizer, STORY), GenerationParams(max_tokens=3, temperature=0)).collect()
    assert result.finish_reason == "length"
    assert result.completion_tokens == 3


async def test_stop_string_cuts_the_text_and_is_never_streamed(engine, tokenizer):
    params = GenerationParams(max_tokens=24, temperature=0, stop=(" Paris", "zzz"))
    stream = engine.submit(chat(tokenizer, FRANCE), params)
    chunks = await drain(stream)
    result = stream.result
    assert result.finish_reason == "stop_sequence"
    assert result.stop_sequence == " Paris"
    assert result.text == "The capital of France is"
    assert "".join(c.text for c in chunks) == result.text
    assert not any("Paris" in c.text for c in chunks)


async def test_a_seed_reproduces_sampled_output_even_when_batched(engine, tokenizer):
    def sampled(seed: int) -> GenerationParams:
        return GenerationParams(max_tokens=12, temperature=1.0, top_p=0.95, seed=seed)

    ids = chat(tokenizer, STORY)
    alone = await engine.submit(ids, sampled(7)).collect()
    streams = [engine.submit(ids, sampled(s)) for s in (7, 8, 9)]
    batched = await asyncio.gather(*(s.collect() for s in streams))
    assert batched[0].text == alone.text
    assert len({r.text for r in batched}) > 1  # different seeds, different samples


async def test_logprobs_are_real_and_top_alternatives_sorted(engine, tokenizer):
    params = GenerationParams(max_tokens=6, temperature=0, logprobs=True, top_logprobs=3)
    stream = engine.submit(chat(tokenizer, FRANCE), params)
    chunks = await drain(stream)
    logprobs = stream.result.logprobs
    assert len(logprobs) == 6
    assert [lp for c in chunks for lp in c.logprobs] == list(logprobs)
    assert "".join(lp.token for lp in logprobs) == stream.result.text
    for entry in logprobs:
        assert entry.logprob <= 0
        values = [value for _, value in entry.top]
        assert len(values) == 3 and values == sorted(values, reverse=True)
        assert entry.top[0] == (entry.token, pytest.approx(entry.logprob))  # greedy picks the best
    assert any(entry.logprob < 0 for entry in logprobs)


async def test_cancel_stops_only_that_row(engine, tokenizer):
    long = GenerationParams(max_tokens=200, temperature=0)
    cancelled = engine.submit(chat(tokenizer, STORY), long)
    other = engine.submit(chat(tokenizer, STORY), GenerationParams(max_tokens=20, temperature=0))
    received = 0
    async for _ in cancelled:
        received += 1
        if received == 3:
            cancelled.cancel()
    assert cancelled.result.finish_reason == "cancelled"
    assert cancelled.result.completion_tokens < 20
    other_result = await other.collect()
    assert other_result.finish_reason == "length" and other_result.completion_tokens == 20

    abandoned = engine.submit(chat(tokenizer, STORY), long)
    async for _ in abandoned:
        break  # a consumer that goes away cancels its row once its iterator is closed (by the loop's finalizer)
    await wait_until_async(lambda: abandoned.cancelled, 1, 0.01, "the abandoned row to be cancelled")


async def test_a_constraint_masks_sampling_and_ends_the_row(engine, tokenizer):
    constraints: list[DigitsConstraint] = []

    def factory(**kwargs):
        def make():
            constraints.append(DigitsConstraint(tokenizer, **kwargs))
            return constraints[-1]

        return make

    sampled = GenerationParams(max_tokens=10, temperature=1.0, seed=3, logprobs=True)
    forced_eos = engine.submit(chat(tokenizer, FRANCE), sampled, factory())
    done_early = engine.submit(chat(tokenizer, FRANCE), GREEDY, factory(done_after_digits=True))
    first, second = await asyncio.gather(forced_eos.collect(), done_early.collect())
    for result in (first, second):
        assert len(result.text) == 3 and result.text.isdigit()
        assert result.finish_reason == "stop"
    assert first.completion_tokens == 4  # three digits, then the forced EOS
    assert second.completion_tokens == 3
    assert all(lp.logprob <= 0 for lp in first.logprobs)
    assert {name for c in constraints for name in c.threads} == {"decoder-engine"}  # never the event loop


async def test_an_error_fails_only_its_stream_and_the_engine_keeps_serving(engine, tokenizer):
    bad = engine.submit(chat(tokenizer, FRANCE), GREEDY, lambda: ExplodingConstraint(tokenizer))
    good = engine.submit(chat(tokenizer, FRANCE), GenerationParams(max_tokens=8, temperature=0))
    with pytest.raises(ValueError, match="constraint exploded"):
        await bad.collect()
    assert "Paris" in (await good.collect()).text
    later = await engine.submit(chat(tokenizer, FRANCE), GenerationParams(max_tokens=2, temperature=0)).collect()
    assert later.completion_tokens == 2
    with pytest.raises(ValueError):
        engine.submit([], GREEDY)


async def test_a_failed_forward_pass_fails_its_batch_and_the_next_one_runs(model_and_tokenizer, tokenizer):
    class FlakyModel:
        def __init__(self, model) -> None:
            self._model, self.calls = model, 0

        def __getattr__(self, name):
            return getattr(self._model, name)

        def __call__(self, **kwargs):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("device lost")
            return self._model(**kwargs)

    engine = DecoderEngine(FlakyModel(model_and_tokenizer[0]), tokenizer, max_wait_s=0.001)
    try:
        with pytest.raises(RuntimeError, match="device lost"):
            await engine.submit(chat(tokenizer, FRANCE), GREEDY).collect()
        result = await engine.submit(chat(tokenizer, FRANCE), GenerationParams(max_tokens=2, temperature=0)).collect()
        assert result.completion_tokens == 2
    finally:
        engine.close()


async def test_raw_prompts_skip_the_chat_template(engine, tokenizer):
    ids = encode_prompt(tokenizer, "The capital of France is")
    assert ids == tokenizer("The capital of France is")["input_ids"]
    assert tokenizer.convert_tokens_to_ids("<|im_start|>") not in ids
    result = await engine.submit(ids, GenerationParams(max_tokens=4, temperature=0)).collect()
    assert result.prompt_tokens == len(ids) and result.completion_tokens == 4
