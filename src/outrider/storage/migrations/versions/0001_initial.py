"""Accounts, API keys, inference history and feedback.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("model_pool", sa.JSON, nullable=True),
        sa.Column("optimize_mode", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("last_used_at", TS, nullable=True),
    )
    op.create_index("ix_api_keys_account_id", "api_keys", ["account_id"])
    op.create_table(
        "inferences",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("api_key_id", sa.String(40), nullable=True),
        sa.Column("surface", sa.String(20), nullable=False),
        sa.Column("model_id", sa.String(300), nullable=False),
        sa.Column("model_used", sa.String(300), nullable=False),
        sa.Column("task", sa.String(20), nullable=False),
        sa.Column("project_id", sa.String(200), nullable=True),
        sa.Column("training_job_id", sa.String(40), nullable=True),
        sa.Column("input", sa.JSON, nullable=False),
        sa.Column("output", sa.JSON, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error_type", sa.String(60), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cost_micro_usd", sa.Integer, nullable=False),
        sa.Column("routing", sa.JSON, nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_inferences_account_created", "inferences", ["account_id", "created_at"])
    op.create_index("ix_inferences_account_model", "inferences", ["account_id", "model_id"])
    op.create_table(
        "inference_feedback",
        sa.Column("inference_id", sa.String(40), sa.ForeignKey("inferences.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("corrected_output", sa.JSON, nullable=True),
        sa.Column("notes", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_inference_feedback_account_id", "inference_feedback", ["account_id"])


def downgrade() -> None:
    op.drop_table("inference_feedback")
    op.drop_table("inferences")
    op.drop_table("api_keys")
    op.drop_table("accounts")
