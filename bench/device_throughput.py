"""Throughput per device (``OUTRIDER_DEVICE``): extraction texts/s, decoder tokens/s, training steps/s.

    uv run python bench/device_throughput.py [--devices cpu cuda] [--base-models DIR] [--texts 256]

For each device, in one process and through Outrider's own loaders (so each model gets the placement
``backends/devices.py`` gives it): the MiniLM GLiNER2 base in torch (float32) extracting the demo schema
from demo texts in batches of 16; SmolLM2-135M greedy-decoding a batch of 8 prompts for a fixed number of
tokens (bfloat16 on a GPU, float32 on the CPU); and a LoRA fine-tune of SmolLM2 on short chats for a fixed
number of optimizer steps (mixed precision on a GPU). Devices default to the CPU, and the first GPU when
torch sees one. Base models are built into ``--base-models`` (a temporary folder when not given).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from outrider.backends import devices  # noqa: E402
from outrider.training.demo_data import DEMO_SCHEMA, demo_records  # noqa: E402

PROMPTS = ["Describe the water cycle.", "Why is the sky blue?", "Explain how a bicycle works.", "What is tea?"] * 2


def extraction_rate(base_models: Path, count: int) -> float:
    from outrider.backends.encoder_gliner import MINILM_BASE_ID, Gliner2Encoder, ensure_minilm_base
    from outrider.core.schema import ExtractionSchema

    folder = ensure_minilm_base(base_models / MINILM_BASE_ID.replace("/", "--"))
    encoder = Gliner2Encoder.load(str(folder), max_batch=16, runtime="torch")
    prepared = encoder.prepare(ExtractionSchema.model_validate(DEMO_SCHEMA))
    texts = [r["input"] for r in demo_records(count, seed=1)]
    encoder.extract(texts[:16], [prepared] * 16, None)  # warm-up (and CUDA kernels)
    started = time.perf_counter()
    for start in range(0, len(texts), 16):
        batch = texts[start : start + 16]
        encoder.extract(batch, [prepared] * len(batch), None)
    _sync()
    return len(texts) / (time.perf_counter() - started)


def decoder_rate(base_models: Path, tokens: int) -> float:
    import torch

    from outrider.backends.decoder_hf import SMOLLM2_ID, HFDecoder, ensure_smollm2_base

    decoder = HFDecoder.load(str(ensure_smollm2_base(base_models / SMOLLM2_ID.replace("/", "--"))))
    try:
        tokenizer, model = decoder.tokenizer, decoder.model
        tokenizer.padding_side = "left"
        chats = [[{"role": "user", "content": p}] for p in PROMPTS]
        inputs = tokenizer.apply_chat_template(
            chats, add_generation_prompt=True, return_tensors="pt", return_dict=True, padding=True
        ).to(model.device)
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=4, do_sample=False)  # warm-up
            _sync()
            started = time.perf_counter()
            out = model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
            _sync()
        produced = (out.shape[1] - inputs["input_ids"].shape[1]) * out.shape[0]
        return produced / (time.perf_counter() - started)
    finally:
        decoder.close()


def training_rate(base_models: Path, steps: int) -> float:
    from outrider.backends.decoder_hf import SMOLLM2_ID, ensure_smollm2_base
    from outrider.training.decoder import DecoderTrainingConfig, run_decoder_training

    base = ensure_smollm2_base(base_models / SMOLLM2_ID.replace("/", "--"))
    chats = [
        {"messages": [{"role": "user", "content": f"What color is box {i}?"}, {"role": "assistant", "content": "Red."}]}
        for i in range(64)
    ]
    config = DecoderTrainingConfig(training_type="lora", epochs=1, batch_size=8, max_steps=steps, eval_batch_size=8)
    with tempfile.TemporaryDirectory() as out:
        result = run_decoder_training(base, chats, [], out, config)
    return result.steps / result.train_seconds


def _sync() -> None:
    import torch

    if devices.current_device().startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    parser.add_argument("--devices", nargs="+", default=default_devices)
    parser.add_argument("--base-models", type=Path, default=None)
    parser.add_argument("--texts", type=int, default=256, help="texts extracted per device")
    parser.add_argument("--tokens", type=int, default=64, help="tokens generated per prompt (batch of 8)")
    parser.add_argument("--steps", type=int, default=10, help="optimizer steps of the LoRA fine-tune")
    args = parser.parse_args()
    base_models = args.base_models or Path(tempfile.mkdtemp(prefix="outrider-bench-"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"{'device':<10} {'extraction texts/s':>19} {'decoder tokens/s':>17} {'training steps/s':>17}")
    for setting in args.devices:
        device = devices.configure_device(setting)
        name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
        extraction = extraction_rate(base_models, args.texts)
        print(f"  {device}: extraction {extraction:.1f} texts/s", file=sys.stderr, flush=True)
        decoding = decoder_rate(base_models, args.tokens)
        print(f"  {device}: decoding {decoding:.1f} tokens/s", file=sys.stderr, flush=True)
        training = training_rate(base_models, args.steps)
        print(f"{device:<10} {extraction:>19.1f} {decoding:>17.1f} {training:>17.2f}   ({name})", flush=True)


if __name__ == "__main__":
    main()
