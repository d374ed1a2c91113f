"""One router per resource: ``github``, ``appenv``, ``secrets``; ``ops`` for operations."""
