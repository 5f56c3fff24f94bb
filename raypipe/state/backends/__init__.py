"""State backend implementations."""
