"""Benchmarks run by `make bench`; each appends its results to BENCHMARKS.md with the machine and date."""
