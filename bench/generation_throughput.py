"""Generation throughput: the OpenAI surface streaming SmolLM2 to 1 and 8 concurrent clients.

    uv run python bench/generation_throughput.py [--tokens 64] [--concurrency 1 8]

Starts ``outrider serve`` on loopback and drives ``/v1/chat/completions`` with the official ``openai``
async client (streaming, greedy, fixed max_tokens). Prints aggregate completion tokens/s, time to first
token and per-stream rate, next to ``transformers``' own ``generate`` at batch 1 on the same model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

from extraction_throughput import KEY, running_server  # noqa: E402

from outrider.backends.decoder_hf import SMOLLM2_ID, ensure_smollm2_base  # noqa: E402

PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works.",
    "Describe the water cycle.",
    "What makes a good cup of tea?",
    "Tell me about the history of Paris.",
    "How do airplanes stay in the air?",
    "Give advice to a new gardener.",
    "Why is the sky blue?",
]


def library_rate(model_dir: Path, tokens: int) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPTS[0]}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.inference_mode():
        model.generate(**inputs, max_new_tokens=4, do_sample=False)
        started = time.perf_counter()
        out = model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
    produced = out.shape[1] - inputs["input_ids"].shape[1]
    return produced / (time.perf_counter() - started)


async def run(url: str, concurrency: int, tokens: int) -> tuple[float, list[float], list[float]]:
    import openai

    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    async with client:
        return await _drive(client, concurrency, tokens)


async def _drive(client, concurrency: int, tokens: int) -> tuple[float, list[float], list[float]]:
    first_token: list[float] = []
    per_stream: list[float] = []
    produced = 0

    async def one(prompt: str) -> None:
        nonlocal produced
        started = time.perf_counter()
        first = None
        stream = await client.chat.completions.create(
            model=SMOLLM2_ID,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=tokens,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - started
            if chunk.usage:
                produced += chunk.usage.completion_tokens
                per_stream.append(chunk.usage.completion_tokens / (time.perf_counter() - started))
        first_token.append((first or 0) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one(PROMPTS[i % len(PROMPTS)]) for i in range(concurrency)))
    return produced / (time.perf_counter() - started), first_token, per_stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="outrider-genbench-"))
    try:
        base = work / "data" / "base-models" / SMOLLM2_ID.replace("/", "--")
        ensure_smollm2_base(base)
        library = library_rate(base, args.tokens)
        models = work / "models"
        models.mkdir()
        with running_server(work, models, 32) as url:
            asyncio.run(run(url, 1, 4))  # load the model
            print(f"SmolLM2-135M-Instruct, {args.tokens} new tokens per request, greedy, streaming")
            print(f"{'':28}{'tok/s total':>12}{'tok/s/stream':>14}{'TTFT p50 ms':>13}")
            print(f"{'transformers generate, bs 1':28}{library:>12.1f}{library:>14.1f}{'':>13}")
            for concurrency in args.concurrency:
                rate, ttft, per_stream = asyncio.run(run(url, concurrency, args.tokens))
                label = f"server, {concurrency} stream{'s' if concurrency > 1 else ''}"
                print(f"{label:28}{rate:>12.1f}{statistics.mean(per_stream):>14.1f}{statistics.median(ttft):>13.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
