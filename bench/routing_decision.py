"""Routing decision time: p50/p99 of ``Router.decide`` over 1,000 prompts (target: p99 under 5 ms).

    .venv/bin/python bench/routing_decision.py [--prompts 1000] [--base-models-dir DIR] [--transformer 100]

Prompts are the routing training and evaluation prompts, varied with openings and closings, and one in
twenty carries a pasted document of 5,000 to 100,000 characters (routing reads only its two ends). The pool
has six models: priced and unpriced, with configured, default and unknown fit scores, and observed latency
for some. Each decision is timed alone on one thread, the way a request makes it: wall-clock time, and the
thread's CPU time next to it (their difference is time the scheduler gave to other processes). The first run builds the
token table and the classifier fit into the base models folder (about a minute); later runs load them.

``--transformer N`` also times, on N of the prompts, what the classifier avoids: a forward pass of the
contextual MiniLM (128 tokens, mean pooling) per prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from outrider.core.messages import ChatMessage  # noqa: E402
from outrider.core.usage import Price  # noqa: E402
from outrider.routing import CandidateModel, FitTable, Router, load_classifier  # noqa: E402
from outrider.routing.classifier import load_examples  # noqa: E402

OPENINGS = ["", "", "Hi! ", "Quick question: ", "Please help. ", "Hey, ", "I need this for work. "]
CLOSINGS = ["", "", " Thanks!", " Be brief.", " Explain your reasoning.", " Reply in English."]
SYSTEMS = ["", "", "", "You are a helpful assistant.", "You are a senior engineer at a fintech company."]
FILLER = (
    "The quarterly planning meeting covered hiring, the budget for the new office, vendor contracts, "
    "and the timeline for the mobile release, with several open questions left for next week. "
)
POOL = [
    CandidateModel("local/smollm2-135m", Price(0.0, 0.0)),
    CandidateModel("local/qwen2.5-coder-1.5b", Price(0.0, 0.0)),
    CandidateModel("openai/gpt-4o-mini", Price(0.15, 0.6)),
    CandidateModel("openai/gpt-4o", Price(2.5, 10.0)),
    CandidateModel("anthropic/claude-sonnet", Price(3.0, 15.0)),
    CandidateModel("vllm/llama-3.1-8b"),  # price not declared
]
FIT_SCORES = {
    "local/smollm2-135m": {"chat": 0.5, "classification": 0.4, "*": 0.2},
    "local/qwen2.5-coder-1.5b": {"code": 0.7, "math": 0.5},
    "openai/gpt-4o-mini": {"*": 0.75, "code": 0.8},
    "openai/gpt-4o": {"*": 0.9},
    "anthropic/claude-sonnet": {"*": 0.9, "code": 0.95, "analysis": 0.93, "creative_writing": 0.93},
}
LATENCIES_MS = {"local/smollm2-135m": 900.0, "openai/gpt-4o-mini": 700.0, "openai/gpt-4o": 1400.0}


def build_prompts(n: int, seed: int = 0) -> list[list[ChatMessage]]:
    rng = random.Random(seed)
    texts = [e.text for e in load_examples()]
    eval_file = ROOT / "tests" / "routing" / "data" / "eval_prompts.jsonl"
    if eval_file.exists():
        texts += [json.loads(line)["text"] for line in eval_file.read_text().splitlines() if line.strip()]
    prompts = []
    for i in range(n):
        text = rng.choice(OPENINGS) + texts[i % len(texts)] + rng.choice(CLOSINGS)
        if i % 20 == 19:
            text += "\n\n" + FILLER * (rng.randint(5_000, 100_000) // len(FILLER))
        system = rng.choice(SYSTEMS)
        prompts.append(([ChatMessage("system", system)] if system else []) + [ChatMessage("user", text)])
    return prompts


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summarise(label: str, values_ms: list[float]) -> None:
    print(
        f"{label:<34} n={len(values_ms):<5} p50 {percentile(values_ms, 50):7.3f} ms   "
        f"p90 {percentile(values_ms, 90):7.3f}   p99 {percentile(values_ms, 99):7.3f}   "
        f"max {max(values_ms):7.3f}   mean {statistics.fmean(values_ms):7.3f}"
    )


def time_transformer(prompts: list[list[ChatMessage]], limit: int) -> list[float]:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from outrider.backends.encoder_gliner import minilm_encoder_dir

    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(minilm_encoder_dir())
    model = AutoModel.from_pretrained(minilm_encoder_dir()).eval()
    times = []
    with torch.inference_mode():
        for messages in prompts[:limit]:
            started = time.perf_counter()
            encoded = tokenizer(messages[-1].content, truncation=True, max_length=128, return_tensors="pt")
            hidden = model(**encoded).last_hidden_state
            torch.nn.functional.normalize(hidden.mean(dim=1), dim=-1)
            times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument(
        "--base-models-dir",
        type=Path,
        default=Path(os.environ.get("OUTRIDER_BASE_MODELS_DIR", "outrider-data/base-models")),
        help="where the routing token table and classifier fit are cached",
    )
    parser.add_argument("--transformer", type=int, default=0, help="also time N contextual MiniLM passes")
    args = parser.parse_args()
    args.base_models_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    classifier = load_classifier(args.base_models_dir)
    load_s = time.perf_counter() - started
    router = Router(classifier, FitTable(FIT_SCORES))
    for model, latency in LATENCIES_MS.items():
        router.latency.seed(model, [latency * f for f in (0.8, 1.0, 1.3)])
    prompts = build_prompts(args.prompts)
    for messages in prompts[:20]:  # warm caches (system prompt embeddings, numpy dispatch)
        router.decide(messages, POOL)

    decide_ms, cpu_ms, classify_ms, long_ms, short_ms, models = [], [], [], [], [], []
    for messages in prompts:
        t0, c0 = time.perf_counter(), time.thread_time()
        decision = router.decide(messages, POOL)
        elapsed = (time.perf_counter() - t0) * 1000
        cpu_ms.append((time.thread_time() - c0) * 1000)
        decide_ms.append(elapsed)
        (long_ms if len(messages[-1].content) > 5000 else short_ms).append(elapsed)
        models.append(decision.model)
    for messages in prompts:
        t0 = time.perf_counter()
        classifier.classify(messages)
        classify_ms.append((time.perf_counter() - t0) * 1000)

    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPU cores, load average {load_avg}")
    print(f"classifier load (cached table and fit): {load_s:.2f} s; {classifier.n_examples} training examples")
    print(f"pool: {len(POOL)} models; {len(prompts)} prompts, {len(long_ms)} with a 5-100k character document\n")
    summarise("Router.decide (all)", decide_ms)
    summarise("  prompts under 5,000 characters", short_ms)
    summarise("  prompts with a long document", long_ms)
    summarise("Router.decide CPU time (thread)", cpu_ms)
    summarise("classifier only", classify_ms)
    over = sum(1 for t in decide_ms if t >= 5) / len(decide_ms)
    print(f"\ndecisions over 5 ms wall clock: {over:.1%} (CPU time: {sum(1 for t in cpu_ms if t >= 5)})")
    print(f"decisions per second on one thread: {1000 / statistics.fmean(decide_ms):.0f}")
    print("chosen models:", dict(sorted(((m, models.count(m)) for m in set(models)), key=lambda kv: -kv[1])))
    p99 = percentile(decide_ms, 99)
    print(f"target p99 < 5 ms: {'met' if p99 < 5 else 'NOT met'} ({p99:.3f} ms)")
    if args.transformer:
        print()
        summarise("contextual MiniLM forward (ref.)", time_transformer(prompts, args.transformer))


if __name__ == "__main__":
    main()
