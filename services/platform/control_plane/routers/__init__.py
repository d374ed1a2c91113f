"""One router per resource; ``internal_*`` routers serve the workflows (token-protected)."""
