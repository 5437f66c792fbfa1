"""Operations: Prometheus metrics, request ids and log formatting (docs/operations.md)."""
