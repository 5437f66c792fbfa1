"""Fine-tune a causal LM on chats with ``transformers`` + ``peft``: LoRA (the default) or every weight.

One plain function, ``run_decoder_training``, that reads top to bottom: load the model, turn each chat into
token ids through the model's own chat template with only the assistant's answers counted in the loss,
then the shared seeded loop (``loop.train_loop``) over padded batches with gradient clipping and a linear
warmup/decay schedule, saving a loadable checkpoint (with ``outrider.json`` metadata) after every epoch and
when a stop is requested. ``DecoderTask`` is the decoder's side of that loop: loss, validation, saving.

What a checkpoint folder is:
- LoRA: a ``peft`` adapter (``adapter_config.json`` + ``adapter_model.safetensors``) whose
  ``base_model_name_or_path`` is the local base folder, so ``AutoPeftModelForCausalLM.from_pretrained``
  loads it with the libraries alone; Outrider serves it on a shared loaded base.
- full: a plain ``transformers`` folder, served and loaded like any saved model.
Both carry the tokenizer, so the folder alone is enough to build prompts.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from outrider.backends.adapters import read_metadata
from outrider.backends.devices import current_device
from outrider.training.loop import (
    CheckpointCallback,
    Hooks,
    LoopSettings,
    ProgressCallback,
    RunState,
    StopCallback,
    begin_run,
    count_steps,
    train_loop,
    warmup_then_decay,
    write_checkpoint,
)
from outrider.training.metrics import answer_metrics

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # the label value that torch's cross-entropy (and so every HF model) skips


@dataclass(frozen=True)
class DecoderTrainingConfig:
    training_type: Literal["lora", "full"] = "lora"
    epochs: int = 3
    # LoRA trains a few fresh low-rank matrices and tolerates a high rate; full fine-tuning moves pretrained
    # weights and needs a rate about a hundred times smaller.
    learning_rate: float | None = None
    batch_size: int = 4
    max_length: int = 1024  # longer chats are cut from the right (the answer end): keep prompts short
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0
    # LoRA on every attention and MLP projection: on small models the MLP adapters carry most of the gain.
    lora_r: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.0  # dropout would make tiny runs noisy and the loss curve harder to read
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    max_steps: int | None = None  # stop early after this many optimizer steps (tests, smoke runs)
    checkpoint_every_steps: int | None = None  # besides the end of every epoch
    eval_max_new_tokens: int = 64
    eval_batch_size: int = 8
    base_model_id: str | None = None  # the Outrider id of ``base_dir``, recorded in the metadata
    num_threads: int | None = None  # torch CPU threads; None keeps the process default

    def resolved_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 2e-4 if self.training_type == "lora" else 2e-5


@dataclass(frozen=True)
class DecoderTrainingResult:
    model_dir: Path | None  # the last checkpoint saved (the final model unless stopped before the first step)
    steps: int
    epoch: int  # the last epoch trained (1-based; partly, when stopped or cut short by max_steps)
    stopped: bool
    final_loss: float | None
    metrics: dict[str, Any]
    train_seconds: float
    seconds_per_step: float | None
    checkpoints: list[Path] = field(default_factory=list)


# --- 1. Chats to training examples -------------------------------------------------------------------


def encode_training_chat(
    tokenizer: Any, messages: list[dict[str, str]], max_length: int, end_ids: set[int] | None = None
) -> dict[str, list[int]]:
    """Token ids and labels for one chat; labels are -100 everywhere except the assistant's answers.

    Each assistant turn's tokens are found by rendering the chat up to that turn twice: once ending with
    the generation prompt (what the model sees before it answers) and once including the answer. The
    difference is exactly what the model must produce, end-of-turn token included (so it learns to stop);
    the template's trailing newline after that token is never generated at serving time, so it stays masked.
    """
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("a training chat must end with an assistant message")
    full = _template_ids(tokenizer, messages, generation_prompt=False)
    labels = [IGNORE_INDEX] * len(full)
    end_of_turn = (end_ids or set()) | ({tokenizer.eos_token_id} - {None})
    for turn, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _template_ids(tokenizer, messages[:turn], generation_prompt=True)
        through = _template_ids(tokenizer, messages[: turn + 1], generation_prompt=False)
        if full[: len(before)] != before or full[: len(through)] != through:
            # A template that rewrites earlier turns (e.g. drops past reasoning) breaks the prefix property.
            raise ValueError("the chat template does not render this chat as a growing prefix")
        answer_end = len(through)
        while answer_end > len(before) and through[answer_end - 1] not in end_of_turn:
            answer_end -= 1
        if answer_end == len(before):  # no end-of-turn token in the template: train the whole rendered turn
            answer_end = len(through)
        labels[len(before) : answer_end] = full[len(before) : answer_end]
    return {"input_ids": full[:max_length], "labels": labels[:max_length]}


def _template_ids(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
    if not messages:
        return []
    chat = [{"role": m["role"], "content": m["content"]} for m in messages]
    encoded = tokenizer.apply_chat_template(chat, add_generation_prompt=generation_prompt, return_dict=True)
    return list(encoded["input_ids"])


def pad_batch(examples: list[dict[str, list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch for training: pads are masked from attention and from the loss."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids = [e["input_ids"] + [pad_id] * (width - len(e["input_ids"])) for e in examples]
    labels = [e["labels"] + [IGNORE_INDEX] * (width - len(e["labels"])) for e in examples]
    mask = [[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in examples]
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "labels": torch.tensor(labels)}


# --- 2. Loading the model to train -----------------------------------------------------------------------


def _is_adapter(folder: Path) -> bool:
    return (folder / "adapter_config.json").exists()


def _load_trainable(base_dir: Path, config: DecoderTrainingConfig) -> tuple[Any, Any, str, Path]:
    """The model to train, its tokenizer, the base model id for the metadata, and the base weights' folder.

    ``base_dir`` is a plain model folder (a base model or a full fine-tune) or a LoRA adapter from an
    earlier run; an adapter continues training as the same adapter (LoRA) or is merged first (full).
    """
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_id = config.base_model_id or base_dir.name
    weights_dir = base_dir
    if _is_adapter(base_dir):
        adapter_config = json.loads((base_dir / "adapter_config.json").read_text())
        weights_dir = Path(adapter_config["base_model_name_or_path"])
        base_id = read_metadata(base_dir).get("base_model", base_id)  # the adapter still runs on that base
    has_tokenizer = (base_dir / "tokenizer_config.json").exists()
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir if has_tokenizer else weights_dir))
    model = AutoModelForCausalLM.from_pretrained(str(weights_dir), dtype="float32")
    if _is_adapter(base_dir):
        model = PeftModel.from_pretrained(model, str(base_dir), is_trainable=config.training_type == "lora")
        if config.training_type == "full":
            model = model.merge_and_unload()
            base_id = config.base_model_id or base_dir.name  # the merged weights are a new model
        return model, tokenizer, base_id, weights_dir
    if config.training_type == "lora":
        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.lora_targets),
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    return model, tokenizer, base_id, weights_dir


# --- 3. Validation: greedy answers to the held-out chats ---------------------------------------------


def generate_answers(
    model: Any, tokenizer: Any, chats: list[list[dict[str, str]]], max_new_tokens: int, batch_size: int = 8
) -> list[str]:
    """Greedy answers to each chat's last assistant turn (the chat minus that turn is the prompt)."""
    import torch

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    answers: list[str] = []
    for start in range(0, len(chats), batch_size):
        prompts = [
            _template_ids(tokenizer, chat[:-1], generation_prompt=True) for chat in chats[start : start + batch_size]
        ]
        # Left padding lines every prompt's end up at the last column, where generation continues.
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=model.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=model.device)
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id
            )
        answers += [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in out]
    return answers


def _on_device(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    return {name: tensor.to(device) for name, tensor in batch.items()}


def evaluate(
    model: Any,
    tokenizer: Any,
    val_records: list[dict[str, Any]],
    val_examples: list[dict[str, list[int]]],
    config: DecoderTrainingConfig,
    pad_id: int,
) -> dict[str, Any]:
    """Validation loss over the held-out chats, then exact match and token F1 of greedy answers."""
    import torch

    if not val_records:
        return {}
    model.eval()
    total_loss, total_tokens = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(val_examples), config.eval_batch_size):
            batch = _on_device(pad_batch(val_examples[start : start + config.eval_batch_size], pad_id), model.device)
            tokens = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())  # the model shifts labels by one
            total_loss += float(model(**batch).loss) * tokens
            total_tokens += tokens
    chats = [r["messages"] for r in val_records]
    predictions = generate_answers(model, tokenizer, chats, config.eval_max_new_tokens, config.eval_batch_size)
    metrics: dict[str, Any] = answer_metrics(predictions, [chat[-1]["content"] for chat in chats])
    metrics["val_loss"] = total_loss / max(total_tokens, 1)
    model.train()
    return metrics


# --- 4. The training loop's decoder side ------------------------------------------------------------------


@dataclass
class DecoderTask:
    """What ``loop.train_loop`` asks of a decoder: the loss of a padded batch of chats, validation by greedy
    answers, and checkpoint folders that the libraries load alone."""

    model: Any
    tokenizer: Any
    config: DecoderTrainingConfig
    pad_id: int
    train_examples: list[dict[str, list[int]]]
    val_records: list[dict[str, Any]]
    val_examples: list[dict[str, list[int]]]
    base_dir: Path  # what the run started from
    base_id: str  # the Outrider id recorded as the checkpoint's base
    weights_dir: Path  # the base weights' folder

    def loss(self, batch: list[int], step: int) -> Any:
        padded = _on_device(pad_batch([self.train_examples[i] for i in batch], self.pad_id), self.model.device)
        return self.model(**padded).loss  # mean cross-entropy over the answer tokens of the batch

    def validate(self) -> dict[str, Any]:
        # Never cut short by a stop: a stop skips validation altogether (generation is slow on CPU).
        return evaluate(self.model, self.tokenizer, self.val_records, self.val_examples, self.config, self.pad_id)

    def save(self, folder: Path, run: RunState, metrics: dict[str, Any]) -> None:
        config = self.config
        metadata = {
            "kind": "decoder",
            "training_type": config.training_type,
            "base_model": self.base_id,
            "base_path": str(self.weights_dir.resolve()),
            "started_from": str(self.base_dir),
            "hyperparameters": {**asdict(config), "learning_rate": config.resolved_learning_rate()},
            "step": run.step,
            "epoch": run.epoch,
            "metrics": metrics,
            "train_examples": len(self.train_examples),
            "val_examples": len(self.val_examples),
        }

        def write(partial: Path) -> None:
            self.model.save_pretrained(str(partial))  # a PeftModel writes only the adapter and its config
            self.tokenizer.save_pretrained(str(partial))

        write_checkpoint(folder, write, metadata)


def _encode_records(
    tokenizer: Any, model: Any, records: list[dict[str, Any]], max_length: int
) -> list[dict[str, list[int]]]:
    # Chat models may end a turn with a token other than the tokenizer's EOS; generation stops on either.
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    end_ids = {int(t) for t in (eos if isinstance(eos, list | tuple) else [eos]) if t is not None}
    return [encode_training_chat(tokenizer, r["messages"], max_length, end_ids) for r in records]


def run_decoder_training(
    base_dir: Path | str,
    train_records: list[dict[str, Any]],
    val_records: list[dict[str, Any]],
    out_dir: Path | str,
    config: DecoderTrainingConfig,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
) -> DecoderTrainingResult:
    """Train on ``{"messages": [...]}`` chats; checkpoints go to ``out_dir/checkpoints/step-<N>``."""
    import torch

    # Absolute, because a LoRA adapter records its base's path for loading it later from anywhere.
    base_dir, out_dir = Path(base_dir).resolve(), Path(out_dir)
    order_rng = begin_run(train_records, config.epochs, config.num_threads, config.seed)

    model, tokenizer, base_id, weights_dir = _load_trainable(base_dir, config)
    model.to(current_device())  # OUTRIDER_DEVICE, passed down by the job (float32 weights, bf16 autocast steps)
    model.train()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_examples = _encode_records(tokenizer, model, train_records, config.max_length)
    val_examples = _encode_records(tokenizer, model, val_records, config.max_length)
    # A chat whose answer was cut off entirely by max_length would add nothing but padding.
    train_examples = [e for e in train_examples if any(label != IGNORE_INDEX for label in e["labels"])]
    if not train_examples:
        raise ValueError(f"no training chat keeps any answer token within max_length={config.max_length}")

    total_steps = count_steps(len(train_examples), config.batch_size, config.epochs, config.max_steps)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.resolved_learning_rate(), weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_then_decay(total_steps, config.warmup_ratio))
    log.info(
        "decoder training: %d chats, %d steps (%s, lr %g)",
        len(train_examples),
        total_steps,
        config.training_type,
        config.resolved_learning_rate(),
    )

    task = DecoderTask(
        model, tokenizer, config, pad_id, train_examples, val_records, val_examples, base_dir, base_id, weights_dir
    )
    settings = LoopSettings(
        out_dir=out_dir,
        examples=len(train_examples),
        batch_size=config.batch_size,
        epochs=config.epochs,
        total_steps=total_steps,
        checkpoint_every=config.checkpoint_every_steps,
        optimizer=optimizer,
        scheduler=scheduler,
        parameters=parameters,
        max_grad_norm=config.max_grad_norm,
        order_rng=order_rng,
    )
    run = train_loop(task, settings, Hooks(on_progress, should_stop, on_checkpoint))
    return DecoderTrainingResult(
        model_dir=run.checkpoints[-1] if run.checkpoints else None,
        steps=run.step,
        epoch=run.epoch,
        stopped=run.stopped,
        final_loss=run.loss,
        metrics=run.metrics,
        train_seconds=run.train_seconds,
        seconds_per_step=run.train_seconds / run.step if run.step else None,
        checkpoints=run.checkpoints,
    )
