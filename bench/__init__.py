"""Benchmarks: each module is a script printing figures (docs/BENCHMARKS.md);
``python -m bench all`` runs them all and prints one summary table."""
