"""Decisions: /decision, the decision card, and closing the loop with the people behind the feedback.

feature.py builds its Feature for bot/composition.py."""
