"""Dashboard indexes: the list pages and the overview read usage and history from indexes alone.

- ``usage_records (account_id, created_at, id, <summed columns>, latency_ms)`` replaces ``(account_id,
  created_at)``: totals, the overview's buckets and a small window's latencies read only the index (no table
  lookups), and pages ordered by ``created_at DESC, id DESC`` need no sort.
- ``usage_records (account_id, latency_ms, created_at)``: a large window's latency percentile is read in
  latency order up to its rank, without sorting the window.
- ``usage_records (account_id, model_id, created_at, id)`` replaces ``(account_id, model_id)``: a page of one
  model's usage is read in order.
- ``inferences (account_id, created_at, id)`` replaces ``(account_id, created_at)``: history pages in order.

Measured with ``bench/dashboard_pages.py`` (see docs/benchmarks.md).

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

USAGE_WINDOW_COLUMNS = [
    "account_id",
    "created_at",
    "id",
    "status",
    "cost_micro_usd",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "latency_ms",
]


def upgrade() -> None:
    op.drop_index("ix_usage_records_account_created", table_name="usage_records")
    op.create_index("ix_usage_records_account_window", "usage_records", USAGE_WINDOW_COLUMNS)
    op.create_index("ix_usage_records_account_latency", "usage_records", ["account_id", "latency_ms", "created_at"])
    op.drop_index("ix_usage_records_account_model", table_name="usage_records")
    op.create_index("ix_usage_records_account_model", "usage_records", ["account_id", "model_id", "created_at", "id"])
    op.drop_index("ix_inferences_account_created", table_name="inferences")
    op.create_index("ix_inferences_account_created", "inferences", ["account_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_inferences_account_created", table_name="inferences")
    op.create_index("ix_inferences_account_created", "inferences", ["account_id", "created_at"])
    op.drop_index("ix_usage_records_account_model", table_name="usage_records")
    op.create_index("ix_usage_records_account_model", "usage_records", ["account_id", "model_id"])
    op.drop_index("ix_usage_records_account_latency", table_name="usage_records")
    op.drop_index("ix_usage_records_account_window", table_name="usage_records")
    op.create_index("ix_usage_records_account_created", "usage_records", ["account_id", "created_at"])
