"""FastAPI services: the control plane (domain state, commands that start workflows) and
the execution workers (side-effect endpoints built on blocks). ``services.http`` holds the
plumbing both share: error bodies, internal auth and request metrics."""
