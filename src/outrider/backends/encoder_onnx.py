"""The optimised serving form of a GLiNER2 model: its encoder in ONNX Runtime, weights quantised to int8.

Measured on the 2-core CI machine (``bench/extraction_throughput.py``, docs/benchmarks.md): in a GLiNER2
call on short texts the transformer encoder is about two thirds of the time and the task heads and
decoding the rest. Of the forms tried on that encoder (MiniLM-L6, 64 texts, one thread, CPU seconds):

- PyTorch fp32, as ``gliner2`` runs it: 0.56 s;
- ONNX Runtime fp32: about 0.49 s; with ``onnxruntime.transformers`` fusions: no better;
- PyTorch dynamic int8 (``quantize_dynamic`` on the Linear layers): about 15% faster overall;
- ONNX Runtime with int8 weights, per-tensor: 0.20 s, but token states drift (mean cosine to fp32 0.981,
  1st percentile 0.948);
- ONNX Runtime with int8 weights, **per output channel**: 0.20 s, mean cosine 0.996, 1st percentile
  0.991. This is the form: 2.8x on the encoder, about 1.7x on a whole extraction call;
- bf16 autocast: close in speed, but confidences round to 1.0 and it needs bf16 hardware.

The heads stay in PyTorch and unchanged: only ``model.encoder`` is replaced, by ``onnx_encoder``,
which answers ``encoder(input_ids=..., attention_mask=...).last_hidden_state`` like the transformers
module (the one call ``gliner2`` and the label head make into it).

A form is built once per distinct set of encoder weights (``build_form``: export, quantise, check) into a
folder named by a hash of those weights, and reused on later loads. It is used only when it matches the
fp32 encoder within :data:`TOLERANCE` on a fixed set of probe texts; a form that fails is kept with its
report, so the check is not repeated on every start, and the model is served in fp32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

EncoderRuntime = Literal["auto", "torch"]
ONNX_FILE = "encoder-int8.onnx"
REPORT_FILE = "check.json"
FORM_VERSION = 1  # part of the cache key: a change to the export or the quantisation rebuilds every form


@dataclass(frozen=True)
class Tolerance:
    """How close the int8 encoder's token states must be to fp32's, by cosine similarity per token over
    every non-padding token of the probe texts."""

    # Measured per-channel int8 forms: demo-extractor 0.996 / 0.991; the untrained MiniLM base 0.989 / 0.976
    # (keeping the FFN output layers in fp32 lifts it to 0.995 but costs 60% of the speed-up).
    mean_cosine: float = 0.985
    p01_cosine: float = 0.97  # the 1st percentile: a few tokens may drift, not a tail of them


TOLERANCE = Tolerance()

# Probe texts for the check: short and long, several domains, names, numbers and punctuation.
PROBE_TEXTS = (
    "Tim Cook announced the new iPhone at Apple Park in Cupertino on Tuesday.",
    "The patient was prescribed 20 mg of atorvastatin daily after the cardiology consult.",
    "I want to cancel my card because I was charged twice for the same order #4471.",
    "Marie Curie won the Nobel Prize in Physics in 1903 and in Chemistry in 1911.",
    "lol just saw @taylorswift at the airport in NYC!!! #blessed",
    "Invoice 2024-113: 3 x USB-C cables at $12.99 each, shipped to 221B Baker Street, London.",
    "Der Vertrag zwischen Siemens AG und der Deutschen Bahn wurde am 3. März unterzeichnet.",
    "Q3 revenue rose 12% year over year to 4.2 billion euros, the company said in Paris.",
    " ".join(
        [
            "Outrider serves extraction models on a CPU: long documents are cut into windows,",
            "each window is encoded with the schema as a prompt, and spans are mapped back to the text.",
        ]
        * 12
    ),
)


@dataclass(frozen=True)
class FormCheck:
    passed: bool
    mean_cosine: float
    p01_cosine: float
    tokens: int
    seconds: float  # export, quantisation and check together
    onnxruntime: str
    tolerance: dict[str, float]


def runtime_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def weights_key(encoder: Any) -> str:
    """A hash of the encoder's weights (and the form version): the name of its form's folder."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"v{FORM_VERSION}".encode())
    for name, tensor in encoder.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def onnx_encoder(path: Path, config: Any, threads: int) -> Any:
    """A module that stands in for the transformers encoder: the same call and output attribute, ONNX
    Runtime inside. A ``torch.nn.Module`` because the GLiNER2 model holds its encoder as a child module;
    it has no trainable weights, and ``peft`` must never wrap it (a model that gets adapters goes back to its
    PyTorch encoder, ``Gliner2Encoder.attach_adapter``)."""
    return _onnx_encoder_class()(path, config, threads)


@lru_cache(maxsize=1)
def _onnx_encoder_class() -> type:
    import onnxruntime as ort
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    class OnnxEncoder(torch.nn.Module):
        def __init__(self, path: Path, config: Any, threads: int) -> None:
            super().__init__()
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # No busy-waiting between operators: the process's other threads (HTTP, the heads in PyTorch)
            # need the same cores.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.config = config
            self.path = path
            # the label head asks for the device of the encoder's first parameter
            self.device_probe = torch.nn.Parameter(torch.empty(0), requires_grad=False)

        def forward(self, input_ids: Any = None, attention_mask: Any = None, **_: Any) -> Any:
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            feed = {
                "input_ids": input_ids.detach().cpu().to(torch.int64).numpy(),
                "attention_mask": attention_mask.detach().cpu().to(torch.int64).numpy(),
            }
            (states,) = self.session.run(None, feed)
            return BaseModelOutput(last_hidden_state=torch.from_numpy(states))

    return OnnxEncoder


def ensure_form(model: Any, cache_dir: Path) -> tuple[Path, FormCheck]:
    """The folder of the int8 ONNX form of ``model``'s encoder under ``cache_dir`` and its check, built on
    first use (a form that failed its check is kept with its report: the check is not repeated)."""
    folder = cache_dir / weights_key(model.encoder)
    return folder, read_check(folder) or build_form(model, folder)


def optimized_encoder(model: Any, cache_dir: Path) -> Any:
    """The int8 ONNX encoder for a loaded GLiNER2 model, built on first use; None when ONNX Runtime is not
    installed, the export fails, or the form is outside the tolerance (the model then runs in fp32)."""
    import torch

    if getattr(model, "encoder", None) is None or not runtime_available():
        return None
    try:
        folder, check = ensure_form(model, cache_dir)
    except Exception:  # an encoder the exporter cannot trace is served as it is
        log.warning("could not build the ONNX int8 form of the encoder; serving in fp32", exc_info=True)
        return None
    if not check.passed:
        log.warning(
            "the ONNX int8 encoder in %s is outside the tolerance (mean cosine %.4f, p01 %.4f); serving in fp32",
            folder,
            check.mean_cosine,
            check.p01_cosine,
        )
        return None
    log.info("serving the encoder from %s (int8, mean cosine %.4f to fp32)", folder / ONNX_FILE, check.mean_cosine)
    return onnx_encoder(folder / ONNX_FILE, model.encoder.config, torch.get_num_threads())


def read_check(folder: Path) -> FormCheck | None:
    try:
        return FormCheck(**json.loads((folder / REPORT_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def build_form(model: Any, folder: Path) -> FormCheck:
    """Export the encoder to ONNX, quantise its weights to int8 per channel, check it against fp32 and write
    ``encoder-int8.onnx`` with ``check.json`` to ``folder`` (renamed into place whole)."""
    import onnxruntime

    started = time.perf_counter()
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".building-") as scratch:
        work = Path(scratch)
        export_int8(model.encoder, model.processor.tokenizer, work / ONNX_FILE)
        mean, p01, tokens = compare(model, onnx_encoder(work / ONNX_FILE, model.encoder.config, 1))
        check = FormCheck(
            passed=mean >= TOLERANCE.mean_cosine and p01 >= TOLERANCE.p01_cosine,
            mean_cosine=round(mean, 5),
            p01_cosine=round(p01, 5),
            tokens=tokens,
            seconds=round(time.perf_counter() - started, 2),
            onnxruntime=onnxruntime.__version__,
            tolerance=asdict(TOLERANCE),
        )
        (work / REPORT_FILE).write_text(json.dumps(asdict(check), indent=2))
        final = work / "form"
        final.mkdir()
        for name in (ONNX_FILE, REPORT_FILE):
            os.replace(work / name, final / name)
        if folder.exists():  # another process built it meanwhile: keep theirs
            return read_check(folder) or check
        try:
            os.replace(final, folder)
        except OSError:  # lost the race to a concurrent build
            shutil.rmtree(final, ignore_errors=True)
    return check


def export_int8(encoder: Any, tokenizer: Any, target: Path) -> None:
    """The encoder as ONNX (batch and length dynamic), then its MatMul weights quantised to signed int8 per
    output channel (activations are quantised per call, dynamically)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class Wrapped(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    sample = tokenizer(list(PROBE_TEXTS[:2]), padding=True, return_tensors="pt")
    fp32 = target.with_name("encoder-fp32.onnx")
    dynamic = {0: "batch", 1: "tokens"}
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            torch.onnx.export(
                Wrapped(encoder),
                (sample["input_ids"], sample["attention_mask"]),
                str(fp32),
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "last_hidden_state": dynamic},
                opset_version=17,
                dynamo=False,  # the TorchScript exporter needs only ``onnx``, not ``onnxscript``
            )
    finally:
        encoder.train(was_training)
    quantize_dynamic(str(fp32), str(target), per_channel=True, weight_type=QuantType.QInt8)
    fp32.unlink()


def compare(model: Any, candidate: Any) -> tuple[float, float, int]:
    """Mean and 1st-percentile cosine similarity of the candidate's token states to the fp32 encoder's,
    over the probe texts (padded as one batch, so padding is exercised too)."""
    import torch

    batch = model.processor.tokenizer(list(PROBE_TEXTS), padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        reference = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        got = candidate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    real = batch["attention_mask"].bool()
    cosine = torch.nn.functional.cosine_similarity(
        reference.last_hidden_state.float(), got.last_hidden_state.float(), dim=-1
    )[real]
    return float(cosine.mean()), float(torch.quantile(cosine, 0.01)), int(real.sum())


def use_optimized(model: Any, runtime: EncoderRuntime, cache_dir: Path | None) -> Any:
    """Put the int8 ONNX encoder into ``model`` when the runtime asks for it and the form passes; returns
    the PyTorch encoder it replaced (kept for adapters), or None when nothing changed."""
    if runtime != "auto" or cache_dir is None:
        return None
    fast = optimized_encoder(model, cache_dir)
    if fast is None:
        return None
    original = model.encoder
    model.encoder = fast
    return original
