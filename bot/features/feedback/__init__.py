"""Feedback: /feedback, the shortcut and the reaction capture, votes, watched channels.

feature.py builds its Feature for bot/composition.py."""
