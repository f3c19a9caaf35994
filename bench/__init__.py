"""Benchmarks: `python -m bench` runs the whole pipeline on synthetic recordings."""
