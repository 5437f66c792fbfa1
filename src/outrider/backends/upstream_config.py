"""The providers file: upstream model servers declared in YAML or JSON, validated at start-up.

    providers:
      - name: myvllm                     # letters, digits, '.', '_', '-'
        type: openai                     # openai (any OpenAI-compatible server) | anthropic
        base_url: http://10.0.0.5:8001/v1
        api_key_env: MYVLLM_KEY          # optional: the environment variable holding the key
        headers: {X-Team: search}        # optional extra headers on every request
        timeout_s: 60                    # longest wait for the next byte (streams) or a response
        connect_timeout_s: 5
        models:
          - model: Qwen/Qwen2.5-7B-Instruct   # the upstream's own model name
            id: qwen-7b                        # optional; default "<provider name>/<model>"
            price: [0.2, 0.6]                  # USD per million input / output tokens
                                               # (4 values: + cache read, cache write)
            context_length: 32768
            capabilities: [chat, json, completions]
            sampling: true                     # false: never send temperature / top_p
          - model: text-embedding-3-small
            kind: embedding                    # served on POST /v1/embeddings (default: decoder)
            price: [0.02, 0]

See ``docs/providers.md`` for every field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Capabilities Outrider acts on; others (e.g. "tools", "vision", "code") are kept for routing and listing.
ACTED_ON_CAPABILITIES = ("chat", "completions", "json")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CAPABILITY = re.compile(r"^[a-z][a-z0-9_-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UpstreamModelConfig(_Strict):
    model: str = Field(min_length=1, description="The model name the upstream knows, sent as its 'model'.")
    kind: Literal["decoder", "embedding"] = Field(
        "decoder", description="decoder: text generation; embedding: its /embeddings (OpenAI-type providers only)."
    )
    id: str | None = Field(None, min_length=1, description="The id Outrider exposes; default '<provider>/<model>'.")
    price: tuple[float, float] | tuple[float, float, float, float] = Field(
        (0.0, 0.0),
        description="USD per million [input, output] tokens, or [input, output, cache read, cache write] tokens.",
    )
    context_length: int | None = Field(None, ge=1)
    capabilities: tuple[str, ...] = ("chat",)
    description: str | None = None
    # False for models that refuse sampling parameters (the newest Claude models): temperature and top_p
    # are then never sent.
    sampling: bool = True

    @model_validator(mode="before")
    @classmethod
    def _embedding_capabilities(cls, data: object) -> object:
        """An embedding model's capabilities default to ``[embeddings]`` rather than ``[chat]``."""
        if isinstance(data, dict) and data.get("kind") == "embedding" and "capabilities" not in data:
            return {**data, "capabilities": ["embeddings"]}
        return data

    @field_validator("price")
    @classmethod
    def _non_negative(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if min(value) < 0:
            raise ValueError("prices must be >= 0 (USD per million input and output tokens)")
        return value

    @field_validator("id")
    @classmethod
    def _not_a_deployment_name(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("@"):
            raise ValueError("a model id must not start with '@': '@name' calls a deployment")
        return value

    @field_validator("capabilities")
    @classmethod
    def _known_shape(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in value if not _CAPABILITY.match(c)]
        if bad:
            raise ValueError(f"capabilities are lowercase words such as chat, json, tools, vision; got {bad}")
        return tuple(dict.fromkeys(value))


class ProviderConfig(_Strict):
    name: str
    type: Literal["openai", "anthropic"]
    base_url: str
    api_key_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(60.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    probe_timeout_s: float = Field(5.0, gt=0)
    max_connections: int = Field(100, ge=1)
    models: list[UpstreamModelConfig] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("a provider name uses letters, digits, '.', '_' and '-' and starts with a letter or digit")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _embeddings_are_openai(self) -> ProviderConfig:
        if self.type != "openai" and any(m.kind == "embedding" for m in self.models):
            raise ValueError("embedding models need an openai-type provider (Anthropic has no embeddings API)")
        return self

    def exposed_id(self, model: UpstreamModelConfig) -> str:
        return model.id or f"{self.name}/{model.model}"


class ProvidersConfig(_Strict):
    providers: list[ProviderConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ProvidersConfig:
        names = [p.name for p in self.providers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"provider names must be unique; repeated: {duplicates}")
        ids = [p.exposed_id(m) for p in self.providers for m in p.models]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"model ids must be unique across providers; repeated: {repeated}")
        return self


class ProvidersFileError(ValueError):
    """The providers file is missing, unreadable or invalid; the message says where and why."""


def load_providers(path: Path) -> ProvidersConfig:
    """Read and validate a providers file (``.yaml``/``.yml`` as YAML, anything else as JSON)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ProvidersFileError(f"providers file {path}: cannot read it ({exc.strerror or exc})") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:
        raise ProvidersFileError(f"providers file {path}: not valid {_format(path)}: {exc}") from exc
    if data is None:
        data = {}
    try:
        return ProvidersConfig.model_validate(data)
    except ValidationError as exc:
        raise ProvidersFileError(f"providers file {path} is invalid:\n{_describe(exc, data)}") from exc


def _format(path: Path) -> str:
    return "YAML" if path.suffix.lower() in (".yaml", ".yml") else "JSON"


def _describe(exc: ValidationError, data: object) -> str:
    """One line per problem, located like ``providers[0] (myvllm).models[1].price``."""
    lines = []
    for err in exc.errors():
        parts, node = [], data
        for step in err["loc"]:
            if isinstance(step, int):
                parts.append(f"[{step}]")
                node = node[step] if isinstance(node, list) and step < len(node) else None
                if isinstance(node, dict) and isinstance(node.get("name"), str):
                    parts.append(f" ({node['name']})")
            else:
                parts.append(("." if parts else "") + str(step))
                node = node.get(step) if isinstance(node, dict) else None
        where = "".join(parts) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)
