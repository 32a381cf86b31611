"""The pure core: models and rules with no I/O and no clock; time is always passed in."""
