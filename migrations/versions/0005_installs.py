"""workspaces: which installation (enterprise, org-wide or not) serves each workspace

Revision ID: 0005_installs
Revises: 0004_view_grants
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.core.models

revision: str = "0005_installs"
down_revision: str | None = "0004_view_grants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("enterprise_id", sa.String(length=32), nullable=True),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("updated_at", bot.core.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team_id"),
    )
    op.create_index("ix_workspaces_enterprise", "workspaces", ["enterprise_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_workspaces_enterprise", table_name="workspaces")
    op.drop_table("workspaces")
