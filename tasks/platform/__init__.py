"""The platform family's steps, by what they touch: ``control_plane`` (domain state,
events, outcomes), ``repositories`` (GitHub), ``secrets`` (values, bindings, GitOps),
``rotation`` (Harbor robots); ``compensation`` is the run's undo log in the control plane,
``calls`` the bridge to the synchronous blocks, ``policies`` how each kind of call retries.
"""
