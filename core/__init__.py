"""The bottom layer: domain models, errors, event names, settings. Imports nothing of ours."""
