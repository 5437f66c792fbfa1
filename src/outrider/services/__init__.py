"""Use cases. Services own transactions, call storage and backends, and raise domain errors."""
