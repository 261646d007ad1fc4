"""Digests: /digest, schedules, the themes of a period posted with a chart, themes on App Home.

feature.py builds its Feature for bot/composition.py."""
