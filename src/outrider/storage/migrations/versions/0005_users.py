"""Users of an account (sign-in with a password, a role) and the user an API key belongs to.

``session_version`` is copied into every session token; sign-out and a password change increment it, so
that every token issued before is refused by the server.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("username", sa.String(100), nullable=False, unique=True),
        sa.Column("email", sa.String(254), nullable=True, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("session_version", sa.Integer, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("password_changed_at", TS, nullable=False),
    )
    op.create_index("ix_users_account_id", "users", ["account_id"])
    # No foreign key: SQLite cannot add one to an existing table, and a key outlives nothing it points to
    # (users are disabled, never deleted).
    op.add_column("api_keys", sa.Column("user_id", sa.String(40), nullable=True))


def downgrade() -> None:
    op.drop_column("api_keys", "user_id")
    op.drop_table("users")
