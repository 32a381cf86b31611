"""adapters git layer."""
