"""adapters builds layer."""
