"""App Home: the person's own view, with each feature's section.

feature.py builds its Feature for bot/composition.py."""
