"""Announcements: /announce, the fan-out to subscribed channels, acknowledgements.

feature.py builds its Feature for bot/composition.py."""
