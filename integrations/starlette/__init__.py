"""Starlette / FastAPI adapter."""
