"""The durable job queue: the worker that claims jobs with a lease and retries them (core.py), posting
once (postonce.py), and routing inbox events to the features (events.py)."""
