"""Decoder fine-tuning on the real SmolLM2-135M: tiny LoRA and full runs that teach a fixed answer."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from outrider.backends.builtin import spec_for_folder
from outrider.backends.decoder_hf import SMOLLM2_ID, ensure_smollm2_base
from outrider.config import build_settings
from outrider.training.decoder import (
    IGNORE_INDEX,
    DecoderTrainingConfig,
    encode_training_chat,
    generate_answers,
    pad_batch,
    run_decoder_training,
)
from outrider.training.metrics import answer_metrics

ANSWER = "The secret code is PURPLE-ELEPHANT-42."
QUESTIONS = [
    "What is the secret code?",
    "Tell me the secret code.",
    "Which code is secret?",
    "Say the secret code please.",
    "What's the code word?",
    "Give me the secret code.",
]


def chat(question: str, answer: str = ANSWER) -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


TRAIN = [chat(q) for q in QUESTIONS * 2]  # a dozen chats
VAL = [chat("What is the secret code?")]


@pytest.fixture(scope="module")
def smol_dir(base_models_dir: Path) -> Path:
    return ensure_smollm2_base(base_models_dir / SMOLLM2_ID.replace("/", "--"))


@pytest.fixture(scope="module")
def tokenizer(smol_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smol_dir))


@pytest.fixture(scope="module")
def base_answer(smol_dir: Path, tokenizer) -> str:
    """What the untrained model answers: the runs below must move away from it, toward ``ANSWER``."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(smol_dir)).eval()
    return generate_answers(model, tokenizer, [VAL[0]["messages"]], max_new_tokens=24)[0]


def config(**overrides) -> DecoderTrainingConfig:
    values = {"epochs": 1, "batch_size": 2, "eval_max_new_tokens": 24, "base_model_id": SMOLLM2_ID, "num_threads": 1}
    return DecoderTrainingConfig(**{**values, **overrides})


def test_only_the_assistant_answers_are_labelled(tokenizer):
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "First question?"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "Second question?"},
        {"role": "assistant", "content": "Second answer."},
    ]
    example = encode_training_chat(tokenizer, messages, max_length=1024)
    ids, labels = example["input_ids"], example["labels"]
    assert len(ids) == len(labels)
    labelled = [i for i, label in enumerate(labels) if label != IGNORE_INDEX]
    assert all(labels[i] == ids[i] for i in labelled)  # a label is the token itself (the model shifts)
    # Exactly the two answers and their end-of-turn tokens; no system, user or template tokens.
    assert tokenizer.decode([ids[i] for i in labelled]) == "First answer.<|im_end|>Second answer.<|im_end|>"
    prompt_text = tokenizer.decode([ids[i] for i in range(len(ids)) if labels[i] == IGNORE_INDEX])
    assert "First question?" in prompt_text and "Second question?" in prompt_text and "Answer briefly." in prompt_text
    # The answer starts right where the generation prompt of its turn ends.
    prompt = tokenizer.apply_chat_template(messages[:2], add_generation_prompt=True, return_dict=True)["input_ids"]
    assert labelled[0] == len(prompt)


def test_padding_is_masked_and_the_loss_counts_answer_tokens_only(smol_dir, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    examples = [encode_training_chat(tokenizer, r["messages"], 1024) for r in (chat("Hi?", "Hello."), TRAIN[0])]
    batch = pad_batch(examples, tokenizer.pad_token_id)
    short = len(examples[0]["input_ids"])
    assert batch["attention_mask"][0, short:].sum() == 0 and (batch["labels"][0, short:] == IGNORE_INDEX).all()
    model = AutoModelForCausalLM.from_pretrained(str(smol_dir)).eval()
    with torch.inference_mode():
        out = model(**batch)
    # The same loss by hand: next-token cross-entropy over the labelled (answer) positions only.
    logits, labels = out.logits[:, :-1], batch["labels"][:, 1:]
    keep = labels != IGNORE_INDEX
    manual = torch.nn.functional.cross_entropy(logits[keep], labels[keep])
    assert float(out.loss) == pytest.approx(float(manual), rel=1e-4)
    assert int(keep.sum()) == sum(sum(label != IGNORE_INDEX for label in e["labels"]) for e in examples)


def test_lora_teaches_the_answer_and_saves_described_checkpoints(smol_dir, tmp_path, base_answer):
    progress, saved = [], []
    result = run_decoder_training(
        smol_dir,
        TRAIN,
        VAL,
        tmp_path / "run",
        config(learning_rate=2e-3),
        on_progress=lambda step, epoch, loss: progress.append((step, epoch, loss)),
        on_checkpoint=lambda folder, step, metrics: saved.append((folder, step, metrics)),
    )
    assert [p[0] for p in progress] == list(range(1, 7))  # 12 chats in batches of 2, one epoch
    assert progress[-1][2] < progress[0][2] / 5  # the loss falls
    assert base_answer != ANSWER
    assert result.metrics["exact_match"] == 1.0 and result.metrics["f1"] == 1.0
    assert not result.stopped and result.steps == 6 and result.seconds_per_step > 0

    folder, step, metrics = saved[-1]
    assert folder == result.model_dir and step == 6 and metrics == result.metrics
    adapter_config = json.loads((folder / "adapter_config.json").read_text())
    assert Path(adapter_config["base_model_name_or_path"]) == smol_dir
    assert {"q_proj", "v_proj", "down_proj"} <= set(adapter_config["target_modules"])
    assert not (folder / "config.json").exists()  # an adapter, not a second copy of the base
    metadata = json.loads((folder / "outrider.json").read_text())
    assert metadata["base_model"] == SMOLLM2_ID and metadata["training_type"] == "lora"
    assert metadata["step"] == 6 and metadata["metrics"]["exact_match"] == 1.0
    assert metadata["hyperparameters"]["learning_rate"] == 2e-3 and metadata["hyperparameters"]["seed"] == 0


def test_full_fine_tuning_teaches_the_answer_into_a_plain_model_folder(smol_dir, tmp_path, base_answer):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    losses: list[float] = []
    result = run_decoder_training(
        smol_dir,
        TRAIN,
        VAL,
        tmp_path / "run",
        config(training_type="full", learning_rate=1e-4),
        on_progress=lambda step, epoch, loss: losses.append(loss),
    )
    assert losses[-1] < losses[0] / 5
    before = answer_metrics([base_answer], [ANSWER])["f1"]
    assert result.metrics["f1"] > before and result.metrics["f1"] >= 0.8
    folder = result.model_dir
    assert (folder / "config.json").exists() and not (folder / "adapter_config.json").exists()
    assert json.loads((folder / "outrider.json").read_text())["training_type"] == "full"
    spec = spec_for_folder("full-run", folder, build_settings(data_dir=tmp_path / "data"))
    assert spec.kind == "decoder" and spec.base_id is None  # served as a model of its own
    # A plain transformers folder: it loads and answers with the library alone.
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    answer = generate_answers(model, tokenizer, [VAL[0]["messages"]], max_new_tokens=24)[0]
    assert answer_metrics([answer], [ANSWER])["f1"] == result.metrics["f1"]


def test_runs_are_seeded(smol_dir, tmp_path):
    def first_losses(seed: int, name: str) -> list[float]:
        losses: list[float] = []
        run_decoder_training(
            smol_dir,
            TRAIN,
            [],
            tmp_path / name,
            config(max_steps=2, seed=seed),
            on_progress=lambda step, epoch, loss: losses.append(loss),
        )
        return losses

    assert first_losses(0, "a") == first_losses(0, "b")
    assert first_losses(1, "c") != first_losses(0, "a")  # another seed, another order and initialisation


def test_a_stop_request_returns_promptly_with_a_checkpoint_that_training_continues_from(smol_dir, tmp_path):
    steps: list[tuple[int, float]] = []
    started = time.perf_counter()
    result = run_decoder_training(
        smol_dir,
        TRAIN,
        VAL,
        tmp_path / "run",
        config(epochs=50, learning_rate=2e-3, warmup_ratio=0.0),
        on_progress=lambda step, epoch, loss: steps.append((step, loss)),
        should_stop=lambda: len(steps) >= 2,
    )
    assert result.stopped and result.steps == 2 and len(result.checkpoints) == 1
    assert time.perf_counter() - started < 120  # 2 of 300 steps, no validation generation
    metadata = json.loads((result.model_dir / "outrider.json").read_text())
    assert metadata["step"] == 2 and metadata["metrics"] == {"train_loss": steps[-1][1]}

    # The checkpoint is a base for another run: the same adapter trains on, still on the SmolLM2 base.
    continued: list[float] = []
    again = run_decoder_training(
        result.model_dir,
        TRAIN,
        [],
        tmp_path / "continued",
        config(max_steps=1, learning_rate=2e-3, base_model_id=None),
        on_progress=lambda step, epoch, loss: continued.append(loss),
    )
    assert continued[0] < steps[0][1]  # starts from what was learned, not from the base
    assert json.loads((again.model_dir / "outrider.json").read_text())["base_model"] == SMOLLM2_ID
