"""Use cases: the only entry point the API, the CLI and the engine call. One transaction each."""
