"""Benchmarks (not tests): run ``.venv/bin/python bench/run.py`` (see bench/README.md)."""
