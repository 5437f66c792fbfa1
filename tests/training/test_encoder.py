"""Small real GLiNER2 fine-tunes on the MiniLM base: full, LoRA (adapters + heads), classification, stop.

Each run is a few dozen templated examples for a few dozen steps on one CPU thread; floors sit well
below what the runs reach (noted next to each) and well above what an untrained model scores.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from outrider.training.demo_data import demo_records
from outrider.training.encoder import EncoderTrainingConfig, run_encoder_training
from outrider.training.encoder_classification import LABEL_HEAD_CONFIG, label_head_usage
from outrider.training.encoder_lora import adapter_usage
from outrider.training.metrics import encoder_metrics

INTENTS = {
    "balance": ["what is my account balance {x}", "how much money do I have {x}", "show my balance {x}"],
    "transfer": ["send money to my friend {x}", "transfer funds to savings {x}", "I want to wire cash {x}"],
    "lost_card": ["I lost my card {x}", "my card was stolen {x}", "cannot find my debit card {x}"],
    "open_account": ["open a new account {x}", "how do I create an account {x}", "start a savings account {x}"],
}
FILLERS = ["please", "today", "right now", "asap", "thanks", "quickly", "now", "urgently", "if possible"]


def intent_records(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        label = rng.choice(list(INTENTS))
        text = rng.choice(INTENTS[label]).format(x=rng.choice(FILLERS))
        task = {"task": "intent", "labels": list(INTENTS), "true_label": [label]}
        records.append({"input": text, "output": {"classifications": [task]}})
    return records


def entity_records(n: int, seed: int, held_out: bool = False) -> list[dict]:
    """The demo templates, entities only (person, company, location); held-out records use unseen names."""
    records = demo_records(n, seed=seed, held_out=held_out)
    return [{"input": r["input"], "output": {"entities": r["output"]["entities"]}} for r in records]


@pytest.fixture(scope="module")
def minilm_base(base_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from outrider.backends.builtin import base_model_dir
    from outrider.backends.encoder_gliner import MINILM_BASE_ID, ensure_minilm_base
    from outrider.config import build_settings

    settings = build_settings(data_dir=tmp_path_factory.mktemp("data"), base_models_dir=base_models_dir)
    return ensure_minilm_base(base_model_dir(settings, MINILM_BASE_ID))


def train(base: Path, out: Path, train_records: list[dict], val_records: list[dict], **config) -> tuple:
    events: dict[str, list] = {"progress": [], "checkpoints": []}
    result = run_encoder_training(
        base,
        train_records,
        val_records,
        out,
        EncoderTrainingConfig(num_threads=1, base_model_id="outrider/gliner2-minilm-l6", **config),
        on_progress=lambda step, epoch, loss: events["progress"].append((step, epoch, loss)),
        on_checkpoint=lambda folder, step, metrics: events["checkpoints"].append((folder, step, metrics)),
    )
    return result, events


@pytest.fixture(scope="module")
def lora_run(minilm_base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    out = tmp_path_factory.mktemp("lora")
    return train(minilm_base, out, entity_records(48, 0), entity_records(24, 1, held_out=True), **LORA)


LORA = {"training_type": "lora", "epochs": 6}  # held-out entity F1 0.97 after 36 steps


def test_full_training_learns_entities_and_saves_a_folder_gliner2_loads_alone(minilm_base, tmp_path):
    val = entity_records(24, 1, held_out=True)
    result, events = train(minilm_base, tmp_path, entity_records(48, 0), val, training_type="full", epochs=10)

    assert result.steps == 60 and not result.stopped
    steps = [step for step, _, _ in events["progress"]]
    assert steps == list(range(1, 61))
    assert events["progress"][-1][1] == 10  # epochs count from 1
    assert result.metrics["f1"] >= 0.5, result.metrics  # 0.82 (an untrained base: 0.0)
    assert set(result.metrics["per_label"]) == {"person", "company", "location"}
    # one checkpoint per epoch, each a loadable folder that describes itself
    assert [step for _, step, _ in events["checkpoints"]] == list(range(6, 61, 6))
    folder = result.model_dir
    metadata = json.loads((folder / "outrider.json").read_text())
    assert metadata["kind"] == "encoder" and metadata["training_type"] == "full"
    assert metadata["base_model"] == "outrider/gliner2-minilm-l6" and metadata["step"] == 60
    assert metadata["metrics"] == result.metrics
    assert metadata["hyperparameters"]["rates"]["encoder"] == 3e-4

    from gliner2 import AutoExtractor, Schema

    # gliner2 alone reproduces the figures: the decoding calibration travels in config.json and the weights,
    # the per-type thresholds in outrider.json (given to gliner2 in the schema)
    model = AutoExtractor.from_pretrained(str(folder)).eval()
    thresholds = metadata["calibration"]["label_thresholds"]
    assert set(thresholds) == {"person", "company", "location"}
    schema = Schema.from_dict({"entities": {label: {"threshold": t} for label, t in thresholds.items()}})
    reloaded = model.batch_extract([r["input"] for r in val], [schema] * len(val), threshold=0.5)
    assert encoder_metrics(val, reloaded)["f1"] == result.metrics["f1"]
    assert metadata["abstention_threshold"] == model.boundary_settings.abstention_threshold


def test_lora_trains_adapters_and_heads_into_one_small_adapter(lora_run):
    from safetensors import safe_open

    result, _ = lora_run
    assert result.metrics["f1"] >= 0.5, result.metrics  # 0.97; LoRA on the encoder alone stays near 0
    folder = result.model_dir
    assert (folder / "adapter_config.json").exists() and not (folder / "model.safetensors").exists()
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as weights:
        keys = list(weights.keys())
    assert any("lora_A" in k for k in keys)
    assert any(k.startswith("base_model.model.boundary_head.") for k in keys)  # the trained heads travel along
    metadata = json.loads((folder / "outrider.json").read_text())
    assert metadata["training_type"] == "lora" and metadata["base_model"] == "outrider/gliner2-minilm-l6"
    assert Path(metadata["base_path"]).is_dir()


def test_a_reloaded_adapter_predicts_what_the_trained_model_did(lora_run):
    """Scored on the validation records, the reloaded adapter gives exactly the in-memory checkpoint metrics,
    through peft + gliner2 alone and through Outrider's shared-base serving."""
    from gliner2 import AutoExtractor, Schema
    from peft import PeftModel

    from outrider.backends.encoder_gliner import Gliner2Encoder
    from outrider.core.schema import ExtractionSchema

    result, _ = lora_run
    val = entity_records(24, 1, held_out=True)
    texts = [r["input"] for r in val]
    labels = ["person", "company", "location"]
    metadata = json.loads((result.model_dir / "outrider.json").read_text())

    base = AutoExtractor.from_pretrained(metadata["base_path"])
    library = PeftModel.from_pretrained(base, str(result.model_dir)).get_base_model().eval()
    calibrated = metadata["abstention_threshold"]  # chosen on the validation split; adapters keep it here
    library.boundary_settings = replace(library.boundary_settings, abstention_threshold=calibrated)
    thresholds = metadata["calibration"]["label_thresholds"]  # per type, given to gliner2 in the schema
    schema = Schema.from_dict({"entities": {label: {"threshold": thresholds[label]} for label in labels}})
    reloaded = library.batch_extract(texts, [schema] * len(texts), threshold=0.5)
    figures = encoder_metrics(val, reloaded)
    for key in ("f1", "precision", "recall", "per_label"):
        assert figures[key] == result.metrics[key]

    served_base = Gliner2Encoder.load(metadata["base_path"])
    prepared_schema = ExtractionSchema.model_validate({"entities": labels})
    prepared = served_base.prepare(prepared_schema)
    before = served_base.extract(texts[:4], [prepared] * 4, 0.5)
    adapter = served_base.attach_adapter(result.model_dir, "ft_test")
    # no threshold: the adapter's calibrated ones (a schema is prepared by the model that runs it)
    served = adapter.extract(texts, [adapter.prepare(prepared_schema)] * len(texts), None)
    assert [_names(r) for r in served] == [_names(r) for r in reloaded]
    assert served_base.extract(texts[:4], [prepared] * 4, 0.5) == before  # the base still serves its own weights

    # the README's way: merged into a plain gliner2 model (merging moves the figures by rounding at most)
    namespace: dict = {}
    exec(adapter_usage(metadata["base_path"], str(result.model_dir)), namespace)
    merged = namespace["model"].batch_extract(texts, [schema] * len(texts), threshold=0.5)
    assert encoder_metrics(val, merged)["f1"] == pytest.approx(result.metrics["f1"], abs=0.05)


def _names(result: dict) -> dict:
    return {
        label: [m["text"] if isinstance(m, dict) else m for m in items] for label, items in result["entities"].items()
    }


def test_training_continues_from_a_lora_checkpoint_on_the_same_base(lora_run, tmp_path):
    result, _ = lora_run
    more, _ = train(result.model_dir, tmp_path, entity_records(16, 2), [], **LORA, max_steps=1)
    metadata = json.loads((more.model_dir / "outrider.json").read_text())
    assert more.steps == 1 and (more.model_dir / "adapter_config.json").exists()
    assert metadata["base_model"] == "outrider/gliner2-minilm-l6"  # still an adapter on the original base
    assert metadata["started_from"] == str(result.model_dir)


def test_classification_learns_with_the_label_head_and_is_served_for_its_labels(minilm_base, tmp_path):
    from outrider.backends.encoder_gliner import Gliner2Encoder
    from outrider.core.schema import ExtractionSchema

    val = intent_records(40, 1)
    result, _ = train(minilm_base, tmp_path, intent_records(48, 0), val, epochs=8)
    assert result.metrics["accuracy"] >= 0.7, result.metrics  # 1.0 (chance: 0.25)
    assert result.metrics["f1"] >= 0.6
    assert (result.model_dir / LABEL_HEAD_CONFIG).exists()

    served = Gliner2Encoder.load(str(result.model_dir))
    schema = ExtractionSchema.model_validate({"classifications": [{"task": "intent", "labels": list(INTENTS)}]})
    texts = [r["input"] for r in val]
    answers = served.extract(texts, [served.prepare(schema)] * len(texts), 0.5)
    gold = [r["output"]["classifications"][0]["true_label"][0] for r in val]
    right = sum(a["intent"]["label"] == g for a, g in zip(answers, gold, strict=True))
    assert right / len(val) == result.metrics["accuracy"]
    subset = ExtractionSchema.model_validate({"classifications": [{"task": "x", "labels": ["lost_card", "balance"]}]})
    answer = served.extract(["I lost my card today"], [served.prepare(subset)], 0.5)[0]["x"]
    assert answer["label"] == "lost_card" and 0.5 < answer["confidence"] <= 1.0

    namespace: dict = {}  # the README's way, with gliner2, torch and safetensors alone
    exec(label_head_usage(str(result.model_dir)), namespace)
    assert namespace["classify"](texts) == [a["intent"]["label"] for a in answers]


def test_gliner2s_own_classification_head_learns_with_the_label_order_curriculum(minilm_base, tmp_path):
    from gliner2 import AutoExtractor

    val = intent_records(40, 1)
    result, _ = train(minilm_base, tmp_path, intent_records(120, 0), val, epochs=5, classification_method="gliner")
    # 0.85 after these 75 steps, 0.875 after 120 (0.15-0.45 without the curriculum)
    assert result.metrics["accuracy"] >= 0.5, result.metrics
    assert not (result.model_dir / LABEL_HEAD_CONFIG).exists()
    model = AutoExtractor.from_pretrained(str(result.model_dir))  # classifies with gliner2 alone
    answer = model.classify_text("my card was stolen please", {"intent": list(INTENTS)})
    assert answer["intent"] in INTENTS


def test_a_stop_request_saves_what_was_learnt_and_returns(minilm_base, tmp_path):
    from gliner2 import AutoExtractor

    steps: list[int] = []
    result = run_encoder_training(
        minilm_base,
        entity_records(48, 0),
        entity_records(8, 1, held_out=True),
        tmp_path,
        EncoderTrainingConfig(epochs=5, num_threads=1),
        on_progress=lambda step, epoch, loss: steps.append(step),
        should_stop=lambda: len(steps) >= 2,
    )
    assert result.stopped and result.steps == 2 and steps == [1, 2]
    assert result.model_dir is not None and list(result.metrics) == []  # no validation on the way out
    metadata = json.loads((result.model_dir / "outrider.json").read_text())
    assert metadata["step"] == 2 and set(metadata["metrics"]) == {"train_loss"}
    AutoExtractor.from_pretrained(str(result.model_dir))


def test_no_records_is_an_error(minilm_base, tmp_path):
    with pytest.raises(ValueError, match="no training records"):
        run_encoder_training(minilm_base, [], [], tmp_path, EncoderTrainingConfig())


def test_the_registry_serves_a_trained_adapter_on_its_shared_base(lora_run, base_models_dir, tmp_path):
    import asyncio
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    from outrider.backends.registry import ModelRegistry
    from outrider.config import build_settings
    from outrider.core.schema import ExtractionSchema

    result, _ = lora_run
    shutil.copytree(result.model_dir, tmp_path / "models" / "ner-adapter")
    settings = build_settings(
        data_dir=tmp_path / "data", base_models_dir=base_models_dir, model_dirs=[tmp_path / "models"]
    )
    val = entity_records(24, 1, held_out=True)
    texts = [r["input"] for r in val]
    schema = ExtractionSchema.model_validate({"entities": ["person", "company", "location"]})

    async def serve() -> tuple:
        with ThreadPoolExecutor(2) as executor:
            registry = ModelRegistry(settings, executor)
            registry.register_plugins()
            spec = registry.resolve("ner-adapter")
            adapter = (await registry.get(spec)).model
            base = (await registry.get(registry.resolve(spec.base_id))).model
            found = adapter.extract(texts, [adapter.prepare(schema)] * len(texts), None)
            return spec, adapter, base, found, registry.loaded_ids()

    spec, adapter, base, found, loaded = asyncio.run(serve())
    assert spec.base_id == "outrider/gliner2-minilm-l6"
    assert adapter.base is base and adapter.model is base.model  # one copy of the weights
    assert set(loaded) == {"ner-adapter", "outrider/gliner2-minilm-l6"}
    # the adapter, its heads and its calibrated abstention cut-off: the figures of the trained model
    assert encoder_metrics(val, found)["f1"] == result.metrics["f1"]
