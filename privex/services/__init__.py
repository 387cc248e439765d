"""Domain logic with no HTTP in it. API views, CLI commands and tasks call these."""
