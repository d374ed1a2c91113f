"""Prefect flows, one subpackage per family; importing this package does no work."""
