"""feedback.merged_into, feedback_merges (what a merge moved, for undo), feedback_pairs (Keep separate)

Revision ID: 0007_merges
Revises: 0006_post_budget
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.core.models

revision: str = "0007_merges"
down_revision: str | None = "0006_post_budget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("merged_into", sa.Integer(), nullable=True))
    op.create_index("ix_feedback_merged_into", "feedback", ["merged_into"], unique=False)
    op.create_table(
        "feedback_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("feedback_id", sa.Integer(), nullable=False),
        sa.Column("into_id", sa.Integer(), nullable=False),
        sa.Column("by", sa.String(length=32), nullable=True),
        sa.Column("request_key", sa.String(length=255), nullable=False),
        sa.Column("moved", sa.JSON(), nullable=False),
        sa.Column("created_at", bot.core.models.UTCDateTime(), nullable=False),
        sa.Column("undone_at", bot.core.models.UTCDateTime(), nullable=True),
        sa.Column("undone_by", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["feedback_id"], ["feedback.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["into_id"], ["feedback.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_key", name="uq_feedback_merges_request"),
    )
    op.create_index("ix_feedback_merges_feedback_id", "feedback_merges", ["feedback_id"], unique=False)
    op.create_table(
        "feedback_pairs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("low_id", sa.Integer(), nullable=False),
        sa.Column("high_id", sa.Integer(), nullable=False),
        sa.Column("choice", sa.String(length=16), nullable=False),
        sa.Column("by", sa.String(length=32), nullable=True),
        sa.Column("created_at", bot.core.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["low_id"], ["feedback.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["high_id"], ["feedback.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("low_id", "high_id", name="uq_feedback_pairs"),
    )


def downgrade() -> None:
    op.drop_table("feedback_pairs")
    op.drop_index("ix_feedback_merges_feedback_id", table_name="feedback_merges")
    op.drop_table("feedback_merges")
    op.drop_index("ix_feedback_merged_into", table_name="feedback")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("merged_into")
