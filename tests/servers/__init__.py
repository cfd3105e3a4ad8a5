"""Real-server test fixtures: Synapse, Redis and PostgreSQL started on loopback."""
