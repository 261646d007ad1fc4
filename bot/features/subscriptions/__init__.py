"""Subscriptions: /subscribe, which channels hear about which product areas.

feature.py builds its Feature for bot/composition.py."""
