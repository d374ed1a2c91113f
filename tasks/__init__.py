"""Prefect tasks: one provider or control-plane operation each, with its retry policy.

``policy`` holds the retry/timeout rules and the thread hop to the sync blocks; ``git``,
``secrets`` and ``control_plane`` are the provisioning and bookkeeping steps;
``rotation_steps`` is the rotation written once, wrapped as tasks by ``rotation`` and run
in batches by ``sweep``.
"""
