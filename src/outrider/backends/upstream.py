"""Upstream providers: models served by other servers, declared in the providers file, callable like local ones.

``UpstreamProviders`` is built once by ``build_services``: one pooled ``ProviderClient`` (aiohttp) per provider
(its key, headers and timeouts), one ``UpstreamMonitor`` (cached health probe and circuit breaker) per
model. ``register_models`` declares a ``ModelSpec`` per model (source ``upstream``, owned by the
provider, with its price), so ``/models``, ``/v1/models`` and ``resolve`` see them next to local models.
``aclose`` closes the clients on shutdown.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from outrider.backends.base import ModelSpec
from outrider.backends.upstream_anthropic import ANTHROPIC_VERSION, AnthropicStream, messages_body
from outrider.backends.upstream_client import ProviderClient
from outrider.backends.upstream_config import ProviderConfig, ProvidersConfig, load_providers
from outrider.backends.upstream_embeddings import UpstreamEmbeddingModel
from outrider.backends.upstream_endpoint import UpstreamEndpoint
from outrider.backends.upstream_health import UpstreamMonitor
from outrider.backends.upstream_openai import OpenAIStream, chat_body, completion_body
from outrider.backends.upstream_stream import UpstreamCall, UpstreamStream
from outrider.config import Settings
from outrider.core.errors import InvalidRequest, UpstreamError
from outrider.core.messages import ChatMessage, GenerationParams
from outrider.core.usage import Price
from outrider.services.broadcast import Broadcast

log = logging.getLogger(__name__)


class UpstreamModel(UpstreamEndpoint):
    """One upstream text-generation model behind the ``DecoderModel`` protocol."""

    def start(self, prompt: list[ChatMessage] | str, params: GenerationParams) -> UpstreamStream:
        """Prepare the call and return its stream at once; the request goes out on ``opened()`` or iteration."""
        if not self.monitor.is_available():
            raise UpstreamError(self.monitor.unavailable_reason(), code="upstream_unavailable")
        capabilities = self.config.capabilities
        if (params.json_mode or params.json_schema is not None) and "json" not in capabilities:
            raise InvalidRequest(
                f"model '{self.model_id}' does not declare the 'json' capability (it has {list(capabilities)}), "
                "so response_format cannot be honoured",
                param="response_format",
            )
        limit = self.config.context_length
        if limit is not None and params.max_tokens >= limit:
            raise InvalidRequest(
                f"max_tokens ({params.max_tokens}) must be below the model's context length of {limit} tokens",
                param="max_tokens",
            )
        name = self.config.model
        prompt_chars = len(prompt) if isinstance(prompt, str) else sum(len(m.content) for m in prompt)
        if self.provider.type == "anthropic":
            body = messages_body(name, prompt, params, sampling=self.config.sampling)
            call = self._call("/v1/messages", body, prompt_chars, params)
            return AnthropicStream(call)
        if isinstance(prompt, str) and "completions" in capabilities:
            body = completion_body(name, prompt, params, sampling=self.config.sampling)
            call = self._call("/completions", body, prompt_chars, params)
            return OpenAIStream(call, chat=False, stops=params.stop)
        # Without the 'completions' capability a raw prompt goes to the chat endpoint as one user turn.
        messages = prompt if isinstance(prompt, list) else [ChatMessage("user", prompt)]
        body = chat_body(name, messages, params, sampling=self.config.sampling)
        call = self._call("/chat/completions", body, prompt_chars, params)
        return OpenAIStream(call, chat=True, stops=params.stop)

    def _call(self, path: str, body: dict[str, Any], prompt_chars: int, params: GenerationParams) -> UpstreamCall:
        return UpstreamCall(
            client=self.client,
            url=self.provider.base_url + path,
            body=body,
            model_id=self.model_id,
            provider=self.provider.name,
            monitor=self.monitor,
            prompt_chars=prompt_chars,
            whole=not params.stream,
        )


class UpstreamProviders:
    """Every declared provider's client and every upstream model, with their health."""

    def __init__(self, config: ProvidersConfig, settings: Settings, environ: dict[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.config = config
        self.clients: dict[str, ProviderClient] = {}
        self.models: dict[str, UpstreamEndpoint] = {}
        for provider in config.providers:
            key, unusable = None, None
            if provider.api_key_env:
                key = environ.get(provider.api_key_env)
                if not key:
                    unusable = f"environment variable {provider.api_key_env} (provider '{provider.name}') is not set"
                    log.warning("upstream provider %s: %s; its models are unavailable", provider.name, unusable)
            client = ProviderClient(
                _headers(provider, key),
                timeout_s=provider.timeout_s,
                connect_timeout_s=provider.connect_timeout_s,
                max_connections=provider.max_connections,
            )
            self.clients[provider.name] = client
            for entry in provider.models:
                model_id = provider.exposed_id(entry)
                kind = UpstreamEmbeddingModel if entry.kind == "embedding" else UpstreamModel
                model = kind(model_id, provider, entry, client)
                model.monitor = UpstreamMonitor(
                    model_id,
                    model.probe,
                    ttl_s=settings.upstream_health_ttl_s,
                    failure_threshold=settings.upstream_breaker_failures,
                    cooldown_s=settings.upstream_breaker_cooldown_s,
                    unusable=unusable,
                )
                self.models[model_id] = model

    @classmethod
    def from_settings(cls, settings: Settings) -> UpstreamProviders:
        config = load_providers(settings.providers_file) if settings.providers_file else ProvidersConfig()
        return cls(config, settings)

    def register_models(self, registry: Any) -> None:
        """Declare a spec per upstream model; an id that a local model already uses stops start-up."""
        taken = {spec.id for spec in registry.specs()}
        clashes = sorted(set(self.models) & taken)
        if clashes:
            raise ValueError(
                f"upstream model ids {clashes} are already used by local models; give them another 'id' in the "
                "providers file"
            )
        for model in self.models.values():
            registry.add(spec_for(model))

    def share_breakers(self, broadcast: Broadcast) -> None:
        """Share every upstream model's circuit-breaker transitions with the other API processes."""
        for model_id, model in self.models.items():
            model.monitor.on_change = lambda change, model_id=model_id: broadcast.publish_soon(
                "breaker", model=model_id, **change
            )

        def apply(change: dict[str, Any]) -> None:
            model = self.models.get(str(change.get("model")))
            if model is not None and change.get("origin") != broadcast.origin:  # this process's own: applied
                model.monitor.apply_shared(change)

        broadcast.on("breaker", apply)

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()


def spec_for(model: UpstreamEndpoint) -> ModelSpec:
    provider, entry = model.provider, model.config
    return ModelSpec(
        id=model.model_id,
        kind=entry.kind,
        source="upstream",
        description=entry.description or f"{entry.model} from {provider.type}-compatible provider '{provider.name}'",
        load=lambda: model,
        price=Price(*entry.price),
        owned_by=provider.name,
        monitor=model.monitor,
        context_length=entry.context_length,
        capabilities=entry.capabilities,
    )


def _headers(provider: ProviderConfig, key: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if provider.type == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
        if key:
            headers["x-api-key"] = key
    elif key:
        headers["Authorization"] = f"Bearer {key}"
    headers.update(provider.headers)  # declared headers win (e.g. a different anthropic-version)
    return headers
