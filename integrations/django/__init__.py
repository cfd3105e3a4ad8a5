"""Django adapter."""
