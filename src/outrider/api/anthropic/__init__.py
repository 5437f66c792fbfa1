"""The Anthropic-compatible surface: POST /v1/messages."""
