"""What is said about a run: statistics, counts, the overview, the pace, stalls."""
