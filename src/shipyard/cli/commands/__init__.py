"""cli commands layer."""
