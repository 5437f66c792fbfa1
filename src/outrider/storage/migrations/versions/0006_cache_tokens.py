"""Prompt-cache usage: the tokens of a call's prompt read from and written to an upstream's prompt cache, on its
usage record and its history record (Pioneer's ``cache_read_tokens`` / ``cache_write_tokens``).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("usage_records", "inferences")
COLUMNS = ("cache_read_tokens", "cache_write_tokens")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in COLUMNS:
                batch.add_column(sa.Column(column, sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in COLUMNS:
                batch.drop_column(column)
