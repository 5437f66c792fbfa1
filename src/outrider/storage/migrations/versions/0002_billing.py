"""Credits (balance, reservations, transactions), usage records, per-key RPM/TPM limits.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("balance_micro_usd", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("reserved_micro_usd", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("unlimited_credits", sa.Boolean, nullable=False, server_default=sa.false()))
    # Admin accounts created before billing existed keep working without a grant.
    op.execute("UPDATE accounts SET unlimited_credits = is_admin")
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("rpm_limit", sa.Integer, nullable=True))
        batch.add_column(sa.Column("tpm_limit", sa.Integer, nullable=True))
    op.create_table(
        "credit_transactions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("amount_micro_usd", sa.BigInteger, nullable=False),
        sa.Column("balance_after_micro_usd", sa.BigInteger, nullable=False),
        sa.Column("reference_id", sa.String(60), nullable=True),
        sa.Column("api_key_id", sa.String(40), nullable=True),
        sa.Column("model_id", sa.String(300), nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_credit_transactions_account_created", "credit_transactions", ["account_id", "created_at"])
    op.create_table(
        "usage_records",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("api_key_id", sa.String(40), nullable=True),
        sa.Column("inference_id", sa.String(40), nullable=True),
        sa.Column("surface", sa.String(20), nullable=False),
        sa.Column("model_id", sa.String(300), nullable=False),
        sa.Column("model_used", sa.String(300), nullable=False),
        sa.Column("task", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cost_micro_usd", sa.BigInteger, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_usage_records_account_created", "usage_records", ["account_id", "created_at"])
    op.create_index("ix_usage_records_account_model", "usage_records", ["account_id", "model_id"])
    op.create_index("ix_usage_records_account_key", "usage_records", ["account_id", "api_key_id"])


def downgrade() -> None:
    op.drop_table("usage_records")
    op.drop_table("credit_transactions")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("tpm_limit")
        batch.drop_column("rpm_limit")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("unlimited_credits")
        batch.drop_column("reserved_micro_usd")
        batch.drop_column("balance_micro_usd")
