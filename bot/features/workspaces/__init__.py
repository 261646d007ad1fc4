"""Workspaces: uninstalls and revoked tokens, channels archived or gone, Slack Connect (who is outside),
and the generic notices (ephemeral, DM, response_url) every feature queues.

feature.py builds its Feature for bot/composition.py."""
