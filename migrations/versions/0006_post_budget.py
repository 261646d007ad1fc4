"""post_budget: one Slack posting budget per workspace and per channel, shared by every replica

Revision ID: 0006_post_budget
Revises: 0005_installs
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_post_budget"
down_revision: str | None = "0005_installs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "post_budget",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("next_free_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "channel"),
    )


def downgrade() -> None:
    op.drop_table("post_budget")
