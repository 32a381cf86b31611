"""Shipyard: release orchestration that separates releasing from deploying."""

__version__ = "0.1.0"
__all__ = ["__version__"]
