"""Slack Connect: cached answers to "is this person outside the organisation / is this channel shared?"

Revision ID: 0003_connect
Revises: 0002_token_encryption
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.core.models

revision: str = "0003_connect"
down_revision: str | None = "0002_token_encryption"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audience_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("object_id", sa.String(length=32), nullable=False),
        sa.Column("external", sa.Boolean(), nullable=False),
        sa.Column("checked_at", bot.core.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "kind", "object_id", name="uq_audience_check"),
    )


def downgrade() -> None:
    op.drop_table("audience_checks")
