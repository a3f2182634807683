"""The side-by-side benchmark behind `make bench` (see bench/run.py)."""
