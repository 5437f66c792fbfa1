"""Account and key management routes."""
