"""Persistence functions, keyword-only, one module per aggregate.

They read and write through the caller's session and never commit: the caller (a
command or an internal endpoint) owns the transaction, so a failure anywhere leaves
nothing written. Status changes all go through ``crud.transitions``.
"""
