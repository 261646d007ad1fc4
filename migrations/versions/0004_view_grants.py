"""view grants: rights checked when a modal was opened, for its submission

Revision ID: 0004_view_grants
Revises: 0003_connect
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.core.models

revision: str = "0004_view_grants"
down_revision: str | None = "0003_connect"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "view_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("view_key", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("expires_at", bot.core.models.UTCDateTime(), nullable=False),
        sa.Column("created_at", bot.core.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("view_key"),
    )
    with op.batch_alter_table("view_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_view_grants_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("view_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_view_grants_expires_at"))
    op.drop_table("view_grants")
