"""What `shipyard demo` needs besides the command: the sample repository, its service, and load.

- ``sample_app.py``: the sample web service, written into the demo repository as ``app.py``
  (stdlib only, because it runs from the built artifact, outside Shipyard's virtualenv).
- ``repo.py``: the sample git repository and the commits of the story (bug, fix).
- ``traffic.py``: bounded load on the production router, logged-in and logged-out users.
- ``processes.py``: the server process the demo drives, and stopping everything it started.
"""
