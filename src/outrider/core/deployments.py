"""Deployment names: stable model ids that point at a model chosen by their account.

A deployment is called as ``@name`` wherever a model id is accepted (``model_id`` on ``/inference``,
``model`` on the OpenAI and Anthropic surfaces). The ``@`` keeps deployment names and model ids apart for
good: no model id starts with it (base and hub ids are ``org/name``, trained models ``ft_...`` and
``ckpt_...``, upstream ids are the provider's names, saved folders are refused by the registry's naming),
so a deployment can never shadow a model, and a model added later can never shadow a deployment. The
routes take the name with or without its ``@`` (``PUT /deployments/support-ner`` and
``PUT /deployments/@support-ner`` are the same deployment).
"""

from __future__ import annotations

import re

DEPLOYMENT_PREFIX = "@"
# Lower-case letters, digits, '.', '_' and '-', starting with a letter or digit: safe in URLs, logs, CLIs.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def is_deployment_id(model_id: str) -> bool:
    return model_id.startswith(DEPLOYMENT_PREFIX)


def deployment_name(value: str) -> str:
    """The bare name of ``value`` (``@name`` or ``name``)."""
    return value[len(DEPLOYMENT_PREFIX) :] if value.startswith(DEPLOYMENT_PREFIX) else value


def deployment_model_id(name: str) -> str:
    return DEPLOYMENT_PREFIX + name


def valid_name(name: str) -> bool:
    return NAME_PATTERN.fullmatch(name) is not None
