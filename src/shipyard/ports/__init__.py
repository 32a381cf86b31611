"""Ports: the small Protocols the use cases need from the outside world. One file per kind."""
