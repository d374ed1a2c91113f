"""How the platform's steps retry (``core.steps.RetryPolicy``), by what they call."""

from __future__ import annotations

from core.steps import RetryPolicy

# GitHub, Harbor and the secret backends: a few attempts over ~7.5 s of backoff.
PROVIDER = RetryPolicy(retries=4, backoff_seconds=0.5, timeout_seconds=60.0)
# The control plane: local and usually fast; a short backoff.
CONTROL_PLANE = RetryPolicy(retries=3, backoff_seconds=0.2, timeout_seconds=30.0)
# Issue a new robot secret and store it: the value exists only inside the attempt, so a
# retry issues another one (the one before was never stored, so nothing uses it). Once
# Harbor has replaced the value the old one is dead, so this step gets more attempts than
# a plain provider call: giving up here leaves consumers without a working credential.
ROTATION = RetryPolicy(retries=4, backoff_seconds=1.0, timeout_seconds=180.0)
# A batch item runs all of one environment's or secret's steps: the provider policy,
# since every step in it is safe to run again.
ITEM = PROVIDER
