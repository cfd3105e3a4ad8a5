"""Runnable sample projects: ``python -m sample_projects.<name>`` from the repository root."""
