"""As root, deployed code, hooks and builds run as an unprivileged user, like an operator's would:
the folders a test hands them must let that user pass through. pytest makes its temporary
folders 0700; these are opened for passing through (0711: not for listing)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def pass_through(path: Path) -> None:
    """0700 folders of root's from ``path`` up to the system temp dir become 0711."""
    if os.geteuid() != 0:
        return
    top = Path(tempfile.gettempdir()).resolve()
    for folder in (path, *path.parents):
        if folder == top or not folder.is_relative_to(top):
            return
        st = folder.stat()
        if st.st_uid == 0 and st.st_mode & 0o777 == 0o700:
            folder.chmod(0o711)


def writable(path: Path) -> Path:
    """A folder deployed code, hooks and builds may write in (a test's markers): 0777, since as
    root they run as the unprivileged app user."""
    path.mkdir(parents=True, exist_ok=True)
    pass_through(path.parent)
    path.chmod(0o777)
    return path
