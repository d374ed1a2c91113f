"""The kernel: errors, settings loading, internal auth, telemetry, the step engine. Imports
nothing of ours and names no family or provider."""
