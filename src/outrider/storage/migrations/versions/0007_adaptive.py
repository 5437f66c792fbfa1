"""Adaptive inference: deployments (stable names, ``@name``, pointing at a model id, with the history of their
targets) and LLM-as-judge verdicts on inference records.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ux_deployments_account_name", "deployments", ["account_id", "name"], unique=True)
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("deployment_id", sa.String(40), sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("previous_target", sa.String(300), nullable=True),
        sa.Column("actor_id", sa.String(40), nullable=True),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index(
        "ux_deployment_events_deployment_version", "deployment_events", ["deployment_id", "version"], unique=True
    )

    op.create_table(
        "inference_judgements",
        sa.Column("inference_id", sa.String(40), sa.ForeignKey("inferences.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("judge_model", sa.String(300), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("reasoning", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("judged_at", TS, nullable=False),
    )
    op.create_index("ix_inference_judgements_account_id", "inference_judgements", ["account_id"])


def downgrade() -> None:
    op.drop_table("inference_judgements")
    op.drop_table("deployment_events")
    op.drop_table("deployments")
