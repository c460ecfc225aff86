"""Benchmarks: scripts that start what they need, measure side by side in one run, and print their figures."""
