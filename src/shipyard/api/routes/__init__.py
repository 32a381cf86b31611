"""api routes layer."""
