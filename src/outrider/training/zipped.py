"""The downloadable zip of a trained model, plus a README.md on loading it with the underlying library alone
(``gliner2``, or ``transformers`` / ``peft``).

- A GLiNER2 LoRA checkpoint is an adapter on a base that Outrider built (no hub has it): the zip holds it
  merged into a complete GLiNER2 folder, which ``AutoExtractor.from_pretrained`` loads.
- A decoder LoRA checkpoint stays a ``peft`` adapter; its ``adapter_config.json`` names its base by this
  server's local path, and in the zip by the base's public id (``HuggingFaceTB/SmolLM2-135M-Instruct``).
- Everything else is the folder as the trainer saved it.

Weights are stored uncompressed (compressing floats saves little and costs minutes).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Literal

from outrider.backends.encoder_adapters import is_encoder_adapter
from outrider.backends.label_head import LABEL_HEAD_CONFIG
from outrider.core.errors import InvalidRequest, NotFound

DownloadFormat = Literal["model", "onnx"]
STORED_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".onnx")


def build_download(
    folder: Path,
    zip_path: Path,
    payload: dict[str, Any],
    job_id: str,
    model_id: str,
    metrics: dict,
    optimized_dir: Path | None = None,
) -> Path:
    """Write ``zip_path`` once (atomically); later downloads reuse it. With ``optimized_dir`` (a GLiNER2
    model only) the zip also holds the encoder's int8 ONNX form, built there or reused from serving."""
    if zip_path.exists():
        return zip_path
    if not folder.is_dir():
        raise NotFound(f"the files of model '{model_id}' are gone")
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_name(zip_path.name + ".partial")
    with tempfile.TemporaryDirectory(dir=zip_path.parent) as scratch:
        if is_encoder_adapter(folder):
            folder = merge_encoder_adapter(folder, Path(scratch) / "merged")
        extra = onnx_files(folder, optimized_dir, model_id) if optimized_dir is not None else {}
        text = readme(payload, job_id, model_id, metrics, folder, onnx="onnx/check.json" in extra)
        write_zip(folder, partial, text, (payload.get("base") or {}), extra)
    os.replace(partial, zip_path)
    return zip_path


def onnx_files(folder: Path, optimized_dir: Path, model_id: str) -> dict[str, Path]:
    """The int8 ONNX encoder of the GLiNER2 model in ``folder`` and its check, by their names in the zip."""
    from gliner2 import AutoExtractor

    from outrider.backends.encoder_onnx import ONNX_FILE, REPORT_FILE, ensure_form

    model = AutoExtractor.from_pretrained(str(folder))
    model.eval()
    form, check = ensure_form(model, optimized_dir)
    if not check.passed:
        raise InvalidRequest(
            f"the int8 ONNX form of model '{model_id}' is outside the tolerance (mean cosine "
            f"{check.mean_cosine:.4f}, 1st percentile {check.p01_cosine:.4f} to fp32) and is not offered: "
            "download the model itself (format=model)",
            param="format",
        )
    return {f"onnx/{ONNX_FILE}": form / ONNX_FILE, f"onnx/{REPORT_FILE}": form / REPORT_FILE}


def merge_encoder_adapter(folder: Path, target: Path) -> Path:
    """The adapter merged into its base, saved as a complete GLiNER2 folder with Outrider's own files."""
    from outrider.backends.encoder_adapters import merge_adapter

    merge_adapter(folder).save_pretrained(str(target))  # with the adapter's calibrated abstention cut-off
    for extra in folder.iterdir():
        if extra.is_file() and extra.name.startswith("outrider") and not (target / extra.name).exists():
            shutil.copy2(extra, target / extra.name)
    return target


def write_zip(
    folder: Path, zip_path: Path, readme_text: str, base: dict[str, Any], extra: dict[str, Path] | None = None
) -> None:
    adapter = (folder / "adapter_config.json").exists()
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, path in (extra or {}).items():
            stored = path.suffix in STORED_SUFFIXES
            archive.write(path, name, compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            name = path.relative_to(folder).as_posix()
            if name == "README.md":
                continue  # peft's generated model card: ours replaces it
            if adapter and name == "adapter_config.json" and base.get("id"):
                config = json.loads(path.read_text())
                config["base_model_name_or_path"] = base["id"]
                archive.writestr(name, json.dumps(config, indent=2), compress_type=zipfile.ZIP_DEFLATED)
                continue
            stored = path.suffix in STORED_SUFFIXES
            archive.write(path, name, compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
        archive.writestr("README.md", readme_text, compress_type=zipfile.ZIP_DEFLATED)


def readme(payload: dict[str, Any], job_id: str, model_id: str, metrics: dict, folder: Path, onnx: bool = False) -> str:
    name = payload.get("model_name", model_id)
    base_id = (payload.get("base") or {}).get("id", "?")
    family = payload.get("family")
    datasets = ", ".join(f"{d['name']} v{d['version']}" for d in payload.get("datasets", []))
    lines = [
        f"# {name}",
        "",
        f"Trained by Outrider job `{job_id}`: a {payload.get('training_type')} fine-tune of `{base_id}` on "
        f"{payload.get('task_type')} data ({datasets}). Outrider model id: `{model_id}`.",
        "",
    ]
    shown = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    if shown:
        lines += ["Validation metrics (held-out split):", ""]
        lines += [f"- {k}: {v:.4f}" if isinstance(v, float) else f"- {k}: {v}" for k, v in shown.items()]
        lines.append("")
    lines += ["## Loading it without Outrider", "", "Unzip it into a folder (`unzip model.zip -d model`), then:", ""]
    if family == "encoder":
        lines += [
            "```python",
            "from gliner2 import AutoExtractor",
            "",
            'model = AutoExtractor.from_pretrained("model")',
            _encoder_example(payload),
            "```",
        ]
        if (folder / LABEL_HEAD_CONFIG).exists():
            lines += ["", LABEL_HEAD_README]
        if onnx:
            lines += ["", ONNX_README, "```python", ONNX_EXAMPLE, _encoder_example(payload), "```"]
    elif (folder / "adapter_config.json").exists():
        lines += [
            f"A LoRA adapter for `{base_id}` (`adapter_config.json` names it), with `transformers` and `peft`:",
            "",
            "```python",
            "from peft import PeftModel",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            f'base = AutoModelForCausalLM.from_pretrained("{base_id}")  # or a local copy of it',
            'model = PeftModel.from_pretrained(base, "model")  # .merge_and_unload() gives a plain model',
            'tokenizer = AutoTokenizer.from_pretrained("model")',
            CHAT_EXAMPLE,
            "```",
        ]
    else:
        lines += [
            "A complete `transformers` model (every weight was trained):",
            "",
            "```python",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            'model = AutoModelForCausalLM.from_pretrained("model")',
            'tokenizer = AutoTokenizer.from_pretrained("model")',
            CHAT_EXAMPLE,
            "```",
        ]
    lines += ["", "`outrider.json` records the base model, the hyperparameters and the training figures.", ""]
    return "\n".join(lines)


def _encoder_example(payload: dict[str, Any]) -> str:
    task = payload.get("task_type")
    if task == "classification":
        return 'print(model.classify_text("Where is my card?", {"label": ["card_arrival", "lost_or_stolen_card"]}))'
    if task == "relations":
        return 'print(model.extract_relations("Tim Cook works for Apple.", ["works_for"]))'
    if task == "structures":
        return 'print(model.extract_json("The Pixel 9 costs $799.", {"product": ["name", "price"]}))'
    return NER_EXAMPLE


# An NER fine-tune carries a decision threshold per entity type, chosen on the job's validation split; Outrider
# serves with them by default, and gliner2 takes them as per-type thresholds in the schema.
NER_EXAMPLE = """print(model.extract_entities("Tim Cook runs Apple in Cupertino.", ["person", "company", "location"]))

# with the per-type thresholds calibrated in training (what Outrider serves by default)
import json
from gliner2 import Schema

calibration = json.load(open("model/outrider.json")).get("calibration") or {}
thresholds = calibration.get("label_thresholds") or {}
schema = Schema.from_dict({"entities": {label: {"threshold": t} for label, t in thresholds.items()}})
print(model.batch_extract(["Tim Cook runs Apple in Cupertino."], [schema], threshold=0.5))"""


CHAT_EXAMPLE = """messages = [{"role": "user", "content": "Hello!"}]
ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
out = model.generate(**ids, max_new_tokens=64, do_sample=False)
print(tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))"""

LABEL_HEAD_README = """This model classifies with Outrider's label-embedding head (`outrider_classifier.json` and
`.safetensors`: too many labels for GLiNER2's own head). It scores the mean-pooled, L2-normalised text
against one vector per label: `exp(log_scale) * cos(text, label) + bias`. Without Outrider:

```python
import json
import torch
from safetensors.torch import load_file

config = json.load(open("model/outrider_classifier.json"))
head = load_file("model/outrider_classifier.safetensors")
task = next(iter(config["tasks"]))
labels = config["tasks"][task]["labels"]
tokenizer = model.processor.tokenizer
batch = tokenizer(["Where is my card?"], padding=True, truncation=True, max_length=config["max_length"],
                  return_tensors="pt")
with torch.no_grad():
    states = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).float()
text = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1).clamp(min=1.0), dim=-1)
weights = torch.nn.functional.normalize(head[f"{task}/weight"], dim=-1)
scores = head["log_scale"].exp() * text @ weights.T + head[f"{task}/bias"]
print(labels[scores.argmax(-1).item()])  # softmax(scores) gives the confidences
```"""

ONNX_README = """## The int8 ONNX encoder

`onnx/encoder-int8.onnx` is this model's transformer encoder exported to ONNX with its weights quantised to
int8 per output channel: the form Outrider serves it in. `onnx/check.json` records how close its token states
are to the fp32 encoder's (cosine similarity) on Outrider's probe texts. The task heads stay in PyTorch: put
the ONNX encoder in place of `model.encoder` (`pip install gliner2 onnxruntime`):"""

ONNX_EXAMPLE = """import onnxruntime
import torch
from gliner2 import AutoExtractor
from transformers.modeling_outputs import BaseModelOutput


class OnnxEncoder(torch.nn.Module):
    \"\"\"Answers the one call GLiNER2 makes into its encoder, with ONNX Runtime inside.\"\"\"

    def __init__(self, path, config):
        super().__init__()
        self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.config = config
        # GLiNER2 asks for the device of the encoder's first parameter
        self.device_probe = torch.nn.Parameter(torch.empty(0), requires_grad=False)

    def forward(self, input_ids=None, attention_mask=None, **_):
        feed = {"input_ids": input_ids.long().numpy(), "attention_mask": attention_mask.long().numpy()}
        (states,) = self.session.run(None, feed)
        return BaseModelOutput(last_hidden_state=torch.from_numpy(states))


model = AutoExtractor.from_pretrained("model")
model.eval()
model.encoder = OnnxEncoder("model/onnx/encoder-int8.onnx", model.encoder.config)"""
