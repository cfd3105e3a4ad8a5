"""Flask adapter."""
