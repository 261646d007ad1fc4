"""token columns of slack-sdk's installation tables hold ciphertext: TEXT instead of VARCHAR(200)

Revision ID: 0002_token_encryption
Revises: 0001

OAuth tokens are stored encrypted (bot/slack/oauth.py): Fernet ciphertext is about 2.5 times the
token's length, so a 79-character user token no longer fits slack-sdk's VARCHAR(200). The tables are
created by slack-sdk's store at start (TEXT since this change), so they exist only in databases that
served OAuth installs before: widen them there. SQLite does not enforce VARCHAR lengths.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_token_encryption"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOKEN_COLUMNS = {
    "slack_bots": ("bot_token", "bot_refresh_token"),
    "slack_installations": ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token",
                            "incoming_webhook_url"),
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    inspector = sa.inspect(bind)
    for table, columns in TOKEN_COLUMNS.items():
        if not inspector.has_table(table):
            continue
        present = {c["name"] for c in inspector.get_columns(table)}
        for column in columns:
            if column in present:
                op.alter_column(table, column, type_=sa.Text(), existing_type=sa.String(200))


def downgrade() -> None:
    # Narrowing back would cut ciphertext; decrypt first (not supported) or keep TEXT.
    pass
