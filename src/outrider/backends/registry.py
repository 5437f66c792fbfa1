"""The model registry: the declared models and the loaded ones.

It holds the specs declared at start-up (built-in models, hub ids, plugins, upstream models) and those of
saved model folders under the configured model directories, and loads models: lazily, in a worker thread,
at most once at a time per id, keeping loaded models in an LRU cache bounded by ``model_cache_size``.
Which model an id names for a caller (trained models, ownership, key pools, availability) is the model
catalog's (``services/catalog.py``), which looks here first.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from outrider.backends.base import (
    Availability,
    DecoderModel,
    EmbeddingModel,
    EncoderModel,
    Health,
    ModelSpec,
    SentenceEncoder,
)
from outrider.config import Settings
from outrider.core.errors import ModelNotFound, ModelUnavailable, OutriderError
from outrider.serving.batcher import ExtractionBatcher
from outrider.serving.embedding_batcher import EmbeddingBatcher

log = logging.getLogger(__name__)

BatchObserver = Callable[[str, str, int], None]  # (model id, "encoder" | "decoder", batch size)


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: EncoderModel | DecoderModel | SentenceEncoder | EmbeddingModel
    batcher: ExtractionBatcher | EmbeddingBatcher | None
    lock: asyncio.Lock  # decoders generate one request at a time

    @property
    def embedder(self) -> EmbeddingModel:
        """What an embedding call goes to: a local model's micro-batcher, or an upstream model itself."""
        if isinstance(self.batcher, EmbeddingBatcher):
            return self.batcher
        if isinstance(self.model, EmbeddingModel):
            return self.model
        raise TypeError(f"model '{self.spec.id}' is not an embedding model")


class ModelRegistry:
    def __init__(self, settings: Settings, executor: Executor, batch_observer: BatchObserver | None = None) -> None:
        self.settings = settings
        self.executor = executor
        self.batch_observer = batch_observer  # told the size of every batch a loaded local model runs
        self._specs: dict[str, ModelSpec] = {}
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._remote: dict[str, LoadedModel] = {}  # models served elsewhere: outside the LRU cache
        self._loading: dict[str, asyncio.Task] = {}
        # LoRA adapters: a few MB each, served on a loaded base, so outside the LRU and dropped with their base.
        self._adapters: dict[str, LoadedModel] = {}
        self._failures: dict[str, str] = {}

    # -- declaring models -------------------------------------------------
    def add(self, spec: ModelSpec) -> None:
        self._specs[spec.id] = spec

    def register_plugins(self) -> None:
        """Built-in models first, then any installed package's ``outrider.models`` entry point."""
        from outrider.backends import builtin

        builtin.register_models(self, self.settings)
        for entry in entry_points(group="outrider.models"):
            try:
                entry.load()(self, self.settings)
            except Exception:
                log.exception("model plugin %s failed to register", entry.name)
        self.scan_model_dirs()

    def scan_model_dirs(self) -> None:
        from outrider.backends.builtin import spec_for_folder

        for root in self.settings.all_model_dirs:
            if not Path(root).is_dir():
                continue
            for folder in sorted(Path(root).iterdir()):
                saved = (folder / "config.json").exists() or (folder / "adapter_config.json").exists()
                # '@name' calls a deployment (core/deployments.py): a folder named so is never a model id.
                if folder.name.startswith("@"):
                    continue
                if folder.is_dir() and saved and folder.name not in self._specs:
                    spec = spec_for_folder(folder.name, folder, self.settings)
                    if spec is not None:
                        self.add(spec)

    # -- resolving ----------------------------------------------------------
    def specs(self) -> list[ModelSpec]:
        return list(self._specs.values())

    def declared(self, model_id: str) -> ModelSpec | None:
        """The spec declared or found under ``model_id`` so far (memory only)."""
        return self._specs.get(model_id)

    def saved(self, model_id: str) -> ModelSpec | None:
        """A model saved into a model directory after start-up (reads the disk)."""
        self.scan_model_dirs()
        return self._specs.get(model_id)

    def resolve(self, model_id: str) -> ModelSpec:
        """A declared or saved model (blocking: may scan the model directories)."""
        spec = self.declared(model_id) or self.saved(model_id)
        if spec is None:
            raise ModelNotFound(f"model '{model_id}' not found; GET /models lists the available ids")
        return spec

    # -- loading --------------------------------------------------------------
    async def health(self, spec: ModelSpec) -> tuple[Health, str | None]:
        """``ready`` when loaded; otherwise start loading it (polling health warms a model) and say so."""
        model_id = spec.id
        if spec.monitor is not None:
            return await spec.monitor.health()
        if model_id in self._loaded or model_id in self._adapters:
            return "ready", None
        if model_id in self._loading:
            return "loading", None
        availability: Availability = await asyncio.to_thread(spec.check)
        if not availability.available:
            return "unavailable", availability.reason
        if model_id in self._failures:  # the last load failed; the next inference request retries it
            return "unavailable", self._failures[model_id]
        self._start_load(spec)
        return "loading", None

    def runtime(self, model_id: str) -> str | None:
        """What runs a loaded local model (``onnx-int8`` or ``torch`` for encoders); None when not loaded."""
        loaded = self._loaded.get(model_id) or self._adapters.get(model_id)
        return getattr(loaded.model, "runtime", None) if loaded is not None else None

    def _start_load(self, spec: ModelSpec) -> asyncio.Task:
        task = self._loading.get(spec.id)
        if task is None:
            task = asyncio.create_task(self._load(spec))
            self._loading[spec.id] = task
            task.add_done_callback(lambda _t, key=spec.id: self._loading.pop(key, None))
        return task

    async def get(self, spec: ModelSpec) -> LoadedModel:
        if spec.monitor is not None:
            remote = self._remote.get(spec.id)
            if remote is None:  # a client for a server elsewhere: building it is cheap and loads nothing
                remote = LoadedModel(spec=spec, model=spec.load(), batcher=None, lock=asyncio.Lock())
                self._remote[spec.id] = remote
            return remote
        loaded = self._loaded.get(spec.id)
        if loaded is not None:
            self._loaded.move_to_end(spec.id)
            return loaded
        adapter = self._adapters.get(spec.id)
        if adapter is not None:
            if spec.base_id in self._loaded:
                self._loaded.move_to_end(spec.base_id)  # an adapter in use keeps its base warm
            return adapter
        return await asyncio.shield(self._start_load(spec))

    async def _load(self, spec: ModelSpec) -> LoadedModel:
        availability = spec.check()
        if not availability.available:
            raise ModelUnavailable(availability.reason or f"model '{spec.id}' is unavailable")
        loop = asyncio.get_running_loop()
        try:
            if spec.base_id is not None and spec.attach is not None:
                # The shared base: loaded once for all its adapters (found on disk off the event loop).
                base_spec = self.declared(spec.base_id) or await asyncio.to_thread(self.resolve, spec.base_id)
                base = await self.get(base_spec)
                model = await loop.run_in_executor(self.executor, spec.attach, base.model)
            else:
                model = await loop.run_in_executor(self.executor, spec.load)
        except OutriderError as exc:
            self._failures[spec.id] = exc.message
            raise
        except Exception as exc:
            self._failures[spec.id] = str(exc)
            log.exception("loading model %s failed", spec.id)
            raise ModelUnavailable(f"model '{spec.id}' failed to load: {exc}") from exc
        self._failures.pop(spec.id, None)
        batcher: ExtractionBatcher | EmbeddingBatcher | None = None
        if spec.kind == "encoder":
            batcher = ExtractionBatcher(
                model,
                self.executor,
                max_batch=self.settings.batch_max_size,
                max_wait_s=self.settings.batch_max_wait_ms / 1000,
                on_batch=self._batch_observer(spec.id, "encoder"),
            )
        elif spec.kind == "embedding":
            batcher = EmbeddingBatcher(
                model,
                self.executor,
                max_batch=self.settings.embedding_batch_max_size,
                max_wait_s=self.settings.embedding_batch_max_wait_ms / 1000,
                on_batch=self._batch_observer(spec.id, "embedding"),
            )
        loaded = LoadedModel(spec=spec, model=model, batcher=batcher, lock=asyncio.Lock())
        if spec.base_id is not None:
            self._adapters[spec.id] = loaded  # its batches are its base's, observed under the base's id
            return loaded
        self._observe_batches(loaded)
        self._loaded[spec.id] = loaded
        while len(self._loaded) > self.settings.model_cache_size:
            evicted, entry = self._loaded.popitem(last=False)
            self._release(entry)
            log.info("evicted model %s from memory (cache size %d)", evicted, self.settings.model_cache_size)
        return loaded

    def _batch_observer(self, model_id: str, kind: str) -> Callable[[int], None] | None:
        observer = self.batch_observer
        if observer is None:
            return None
        return lambda size: observer(model_id, kind, size)

    def _observe_batches(self, loaded: LoadedModel) -> None:
        """A local decoder's engine is built inside its loader: it is told where batch sizes go once loaded."""
        engine = getattr(loaded.model, "engine", None)
        if engine is not None and hasattr(engine, "on_batch"):
            engine.on_batch = self._batch_observer(loaded.spec.id, "decoder")

    def queue_depths(self) -> Iterator[tuple[str, str, int]]:
        """(model id, kind, work waiting) for each loaded local model with a queue."""
        for model_id, loaded in list(self._loaded.items()):
            if loaded.batcher is not None:
                yield model_id, loaded.spec.kind, loaded.batcher.waiting
            engine = getattr(loaded.model, "engine", None)
            if engine is not None and hasattr(engine, "pending"):
                yield model_id, "decoder", engine.pending

    def close(self) -> None:
        """Release every loaded model (their worker threads stop)."""
        while self._loaded:
            self._release(self._loaded.popitem()[1])

    def _release(self, entry: LoadedModel) -> None:
        """Close a loaded model and forget the adapters served on it (they go with their base's engine)."""
        for adapter_id, adapter in list(self._adapters.items()):
            if getattr(adapter.model, "base", None) is entry.model:
                del self._adapters[adapter_id]
        _close(entry)

    def loaded_ids(self) -> list[str]:
        return [*self._loaded, *self._adapters]


def _close(entry: LoadedModel) -> None:
    close = getattr(entry.model, "close", None)
    if callable(close):
        close()
