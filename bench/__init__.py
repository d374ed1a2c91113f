"""Benchmarks of the workflows against the asyncio lower bound (``make bench``)."""
