"""The int8 ONNX Runtime form of a GLiNER2 encoder: built once per set of weights, checked against fp32,
served in place of the PyTorch encoder, and given back to PyTorch when an adapter attaches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from outrider.backends.encoder_gliner import Gliner2Encoder
from outrider.backends.encoder_onnx import ONNX_FILE, REPORT_FILE, TOLERANCE, ensure_form, weights_key
from outrider.core.schema import ExtractionSchema

TEXTS = [
    "David Kim works for Sony in Berlin.",
    "Maria Lopez joined Google in Madrid last spring.",
    "Tim Cook announced the new iPhone at Apple Park in Cupertino on Tuesday.",
    "Anna Schmidt works for Siemens in Munich and often visits Vienna.",
    "The meeting with Kenji Sato from Toyota took place in Osaka.",
    "Nobody was there.",
]
SCHEMA = ExtractionSchema.model_validate({"entities": ["person", "company", "location"]})


@pytest.fixture(scope="module")
def optimized_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("optimized")


@pytest.fixture(scope="module")
def demo_path(demo_model_dir: Path) -> str:
    return str(demo_model_dir / "demo-extractor")


@pytest.fixture(scope="module")
def fp32(demo_path: str) -> Gliner2Encoder:
    return Gliner2Encoder.load(demo_path, runtime="torch")


@pytest.fixture(scope="module")
def int8(demo_path: str, optimized_dir: Path) -> Gliner2Encoder:
    return Gliner2Encoder.load(demo_path, runtime="auto", optimized_dir=optimized_dir)


def spans(result: dict) -> dict[str, list[tuple[int, int]]]:
    return {label: sorted((e["start"], e["end"]) for e in found) for label, found in result["entities"].items()}


def test_the_demo_models_form_passes_its_check_and_is_kept_with_the_report(int8, fp32, optimized_dir):
    assert int8.runtime == "onnx-int8" and fp32.runtime == "torch"
    folder = optimized_dir / weights_key(fp32.model.encoder)
    report = json.loads((folder / REPORT_FILE).read_text())
    assert report["passed"] and report["mean_cosine"] >= TOLERANCE.mean_cosine
    assert report["p01_cosine"] >= TOLERANCE.p01_cosine and report["tokens"] > 300
    assert (folder / ONNX_FILE).stat().st_size < 40_000_000  # int8: a quarter of MiniLM's 90 MB of fp32
    assert type(int8.model.encoder).__name__ == "OnnxEncoder"


def test_a_form_is_built_once_per_set_of_weights(fp32, int8, optimized_dir):
    built = optimized_dir / weights_key(fp32.model.encoder) / ONNX_FILE
    before = built.stat().st_mtime_ns
    folder, check = ensure_form(fp32.model, optimized_dir)
    assert check.passed and folder / ONNX_FILE == built and built.stat().st_mtime_ns == before
    assert [p.name for p in optimized_dir.iterdir()] == [folder.name]  # no scratch folder left behind


def test_the_int8_form_finds_the_spans_fp32_finds(fp32, int8):
    """Not bit-equal (int8 moves a borderline boundary now and then: "Apple" vs "Apple Park"), but close:
    span agreement of at least 0.9 F1 on held-out demo texts, and confidences that move by 0.01 at most for
    nine spans in ten."""
    from outrider.training.demo_data import demo_records

    texts = TEXTS + [r["input"] for r in demo_records(64, seed=11, held_out=True)]
    want = fp32.extract(texts, [fp32.prepare(SCHEMA)] * len(texts), 0.5)
    got = int8.extract(texts, [int8.prepare(SCHEMA)] * len(texts), 0.5)
    flat = lambda results: {  # noqa: E731
        (i, label, span) for i, r in enumerate(results) for label, found in spans(r).items() for span in found
    }
    expected, found = flat(want), flat(got)
    assert len(expected) >= 100  # the demo model does find things
    agreement = 2 * len(expected & found) / (len(expected) + len(found))
    assert agreement >= 0.9, (agreement, sorted(expected ^ found)[:10])
    confidences = lambda results: {  # noqa: E731
        (i, label, e["start"], e["end"]): e["confidence"]
        for i, r in enumerate(results)
        for label, items in r["entities"].items()
        for e in items
    }
    mine, theirs = confidences(got), confidences(want)
    gaps = sorted(abs(mine[key] - theirs[key]) for key in mine.keys() & theirs.keys())
    # measured: agreement 0.998, mean gap 0.0024, 90th percentile 0.0019, one borderline span at 0.17
    assert sum(gaps) / len(gaps) <= 0.01 and gaps[int(len(gaps) * 0.9)] <= 0.01, gaps[-10:]


def test_runtime_torch_never_builds_a_form(demo_path, tmp_path):
    model = Gliner2Encoder.load(demo_path, runtime="torch", optimized_dir=tmp_path)
    assert model.runtime == "torch" and list(tmp_path.iterdir()) == []


def test_a_form_outside_the_tolerance_is_kept_but_not_served(demo_path, tmp_path, fp32):
    folder = tmp_path / weights_key(fp32.model.encoder)
    folder.mkdir()
    failed = {
        "passed": False,
        "mean_cosine": 0.9,
        "p01_cosine": 0.5,
        "tokens": 644,
        "seconds": 1.0,
        "onnxruntime": "test",
        "tolerance": {"mean_cosine": 0.985, "p01_cosine": 0.97},
    }
    (folder / REPORT_FILE).write_text(json.dumps(failed))
    model = Gliner2Encoder.load(demo_path, runtime="auto", optimized_dir=tmp_path)
    assert model.runtime == "torch"  # the recorded failure is trusted: no rebuild, fp32 served


def test_an_adapter_puts_the_pytorch_encoder_back(demo_path, optimized_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    model = Gliner2Encoder.load(demo_path, runtime="auto", optimized_dir=optimized_dir)
    assert model.runtime == "onnx-int8"
    # a LoRA adapter of the demo model, saved as the encoder trainer saves one
    trainer_copy = Gliner2Encoder.load(demo_path, runtime="torch").model
    lora = get_peft_model(trainer_copy, LoraConfig(r=4, target_modules=["query", "value"]))
    lora.save_pretrained(str(tmp_path / "adapter"))
    view = model.attach_adapter(tmp_path / "adapter", "demo-lora")
    assert model.runtime == "torch" and view.runtime == "torch"
    assert type(model.model.encoder).__name__ != "OnnxEncoder"
    (result,) = view.extract(TEXTS[:1], [view.prepare(SCHEMA)], 0.5)
    assert "entities" in result
