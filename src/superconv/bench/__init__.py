"""Benchmarks and the GPU budget: the top layer (nothing in the product imports it). ``python -m superconv.bench``."""
