"""execution-workers (seed 002): the internal service that performs side effects.

It exposes the seed's endpoints over the same provider blocks the workflows use
(``blocks/``), so there is one copy of provider code; it never writes domain state and
reports ``appenv_*`` events to the control plane through the ``ControlPlane`` block.
"""
