"""adapters artifacts layer."""
