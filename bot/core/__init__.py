"""Shared infrastructure: settings, database and models, group commit, clock, logging, the Slack Web
API client, and the rules every feature shares (jobs rows, workspaces, channels, audience)."""
