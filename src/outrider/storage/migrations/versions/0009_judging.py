"""Background judging: judge configurations per account and project, and the queue of sampled inference
records waiting for their judge (drained by the job worker); retrain policies of deployments.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "judge_configs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("project_id", sa.String(200), nullable=False),
        sa.Column("judge_model", sa.String(300), nullable=False),
        sa.Column("sampling_rate", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ux_judge_configs_account_project", "judge_configs", ["account_id", "project_id"], unique=True)
    op.create_table(
        "judge_queue",
        sa.Column("inference_id", sa.String(40), sa.ForeignKey("inferences.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("judge_model", sa.String(300), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("not_before", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_judge_queue_not_before", "judge_queue", ["not_before"])
    op.create_table(
        "retrain_policies",
        sa.Column(
            "deployment_id", sa.String(40), sa.ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("task_type", sa.String(20), nullable=False),
        sa.Column("min_corrections", sa.Integer, nullable=False),
        sa.Column("margin", sa.Float, nullable=False),
        sa.Column("holdout_fraction", sa.Float, nullable=False),
        sa.Column("training", sa.JSON, nullable=False),
        sa.Column("corrections_since", TS, nullable=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("run", sa.JSON, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_retrain_policies_account_id", "retrain_policies", ["account_id"])


def downgrade() -> None:
    op.drop_table("retrain_policies")
    op.drop_table("judge_queue")
    op.drop_table("judge_configs")
