"""Benchmarks of txtestserver against its peers: ``python -m bench`` (see bench/run.py)."""
