"""The dashboard: server-rendered pages under /ui, read and acted on through the services.

``routes`` (the pages), ``session`` (token cookie, CSRF), ``pages`` (templates, errors as pages),
``views`` (what the matrix and charts show); ``templates/`` and ``static/`` hold the HTML and the
one stylesheet and script.
"""

from shipyard.web.routes import router

__all__ = ["router"]
