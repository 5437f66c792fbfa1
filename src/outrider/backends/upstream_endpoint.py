"""What every upstream model shares, whatever it serves: its provider, its entry in the providers file, the
provider's pooled client, its health monitor, and the health probe the monitor runs."""

from __future__ import annotations

import json

from outrider.backends.upstream_client import TRANSPORT_ERRORS, ProviderClient, is_timeout
from outrider.backends.upstream_config import ProviderConfig, UpstreamModelConfig
from outrider.backends.upstream_health import UpstreamMonitor
from outrider.backends.upstream_stream import error_message


class UpstreamEndpoint:
    monitor: UpstreamMonitor  # set right after construction: it probes through this model

    def __init__(
        self, model_id: str, provider: ProviderConfig, config: UpstreamModelConfig, client: ProviderClient
    ) -> None:
        self.model_id = model_id
        self.provider = provider
        self.config = config
        self.client = client

    async def probe(self) -> str | None:
        """None when the upstream answers its model list (and lists this model when it lists any);
        otherwise why not. OpenAI-type: ``GET {base}/models``; Anthropic: ``GET {base}/v1/models``."""
        path = "/v1/models" if self.provider.type == "anthropic" else "/models"
        where = f"upstream '{self.provider.name}'"
        try:
            status, content = await self.client.get(self.provider.base_url + path, self.provider.probe_timeout_s)
        except TRANSPORT_ERRORS as exc:
            if is_timeout(exc):
                return f"{where} did not answer its health probe within {self.provider.probe_timeout_s} s"
            return f"{where} is unreachable: {type(exc).__name__}: {exc}"
        if status >= 400:
            return f"{where} answered {status} to GET {path}: {error_message(content)}"
        try:
            listed = {str(m.get("id")) for m in json.loads(content).get("data") or () if isinstance(m, dict)}
        except (ValueError, AttributeError):
            return None  # reachable and answering; not every server lists models in OpenAI's shape
        if listed and self.config.model not in listed:
            return f"{where} does not list model '{self.config.model}'"
        return None
