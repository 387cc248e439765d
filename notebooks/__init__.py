"""The retrieval notebooks, and what runs them (``python -m notebooks``, ``make eval``, the test suite)."""
