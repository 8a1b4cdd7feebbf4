"""Benchmarks and the strategy lab's replay machinery: scripts that print figures."""
