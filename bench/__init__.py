"""Benchmarks: Kafkaweb measured against the alternatives and the machine's limits, in one run."""
