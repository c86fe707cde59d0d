"""Benchmarks: measured comparisons, run by `make bench`."""
