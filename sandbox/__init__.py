"""Local servers that speak the real GitHub, Harbor, Vault and secret-endpoint APIs.

The sandbox is the embedded default (a new user runs every workflow against it with no
credentials) and the fake the tests and benchmarks use. Every server keeps its state in
memory, runs in a thread on loopback, and accepts fault injection (``faults.py``).
"""
