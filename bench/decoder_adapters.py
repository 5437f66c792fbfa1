"""Decoder fine-tuning and adapter serving figures on SmolLM2-135M (CPU).

    uv run python bench/decoder_adapters.py [--threads 2] [--steps 4] [--rows 8] [--tokens 48] [--base-models DIR]

1. Training: seconds per optimizer step of ``run_decoder_training`` (batch 4, short chats), LoRA and full.
2. Serving: completion tokens/s of the decoder engine for ``--rows`` concurrent greedy requests, on the base
   before any adapter is loaded, then after two adapters are loaded on it: base rows only, every row on one
   adapter, rows split over two adapters, and rows split between the base and one adapter.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from outrider.backends.decoder_adapters import attach_adapter  # noqa: E402
from outrider.backends.decoder_hf import SMOLLM2_ID, HFDecoder, ensure_smollm2_base  # noqa: E402
from outrider.core.messages import ChatMessage, GenerationParams  # noqa: E402
from outrider.training.decoder import DecoderTrainingConfig, run_decoder_training  # noqa: E402

PROMPTS = ["Write a short story about a lighthouse keeper.", "Explain how a bicycle works.", "Describe the rain."]


def chats(count: int) -> list[dict]:
    return [
        {"messages": [{"role": "user", "content": f"Repeat the number {i}."}, {"role": "assistant", "content": f"{i}"}]}
        for i in range(count)
    ]


def train(base: Path, out: Path, kind: str, steps: int, threads: int) -> tuple[Path, float]:
    config = DecoderTrainingConfig(
        training_type=kind, epochs=100, max_steps=steps, batch_size=4, learning_rate=1e-5, num_threads=threads
    )
    result = run_decoder_training(base, chats(16), [], out, config)
    return result.model_dir, result.seconds_per_step


async def rate(models: list, tokens: int) -> float:
    params = GenerationParams(max_tokens=tokens, temperature=0)
    prompts = [[ChatMessage("user", PROMPTS[i % len(PROMPTS)])] for i in range(len(models))]
    started = time.perf_counter()
    results = await asyncio.gather(*(m.start(p, params).collect() for m, p in zip(models, prompts, strict=True)))
    return sum(r.completion_tokens for r in results) / (time.perf_counter() - started)


async def serving(base: Path, adapters: list[Path], rows: int, tokens: int) -> list[tuple[str, float]]:
    decoder = HFDecoder.load(str(base), max_batch=rows, max_wait_s=0.05)
    try:
        await rate([decoder], 4)  # warm-up
        figures = [("base, no adapter loaded", await rate([decoder] * rows, tokens))]
        one, two = (attach_adapter(decoder, path, path.name) for path in adapters)
        half = rows // 2
        figures += [
            ("base rows, 2 adapters loaded", await rate([decoder] * rows, tokens)),
            ("1 adapter, every row", await rate([one] * rows, tokens)),
            ("2 adapters mixed in the batch", await rate([one, two] * half, tokens)),
            ("base + 1 adapter mixed", await rate([decoder, one] * half, tokens)),
        ]
        return figures
    finally:
        decoder.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--base-models", help="a folder holding the converted base (built into a temp dir if not)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        base = ensure_smollm2_base(Path(args.base_models or tmp) / SMOLLM2_ID.replace("/", "--"))
        adapters = []
        for kind in ("lora", "lora", "full"):
            folder, per_step = train(base, Path(tmp) / f"{kind}-{len(adapters)}", kind, args.steps, args.threads)
            print(f"training {kind:4}: {per_step:.2f} s/step (batch 4, {args.threads} threads)")
            if kind == "lora":
                adapters.append(folder)
        for label, value in asyncio.run(serving(base, adapters, args.rows, args.tokens)):
            print(f"serving {args.rows} rows, {label:32}: {value:6.1f} tokens/s")


if __name__ == "__main__":
    main()
