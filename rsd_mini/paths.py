"""Where rsd-mini keeps what it cannot ship: the official weights and the paper's data sets."""

from __future__ import annotations

import os
from pathlib import Path


def user_folder(explicit: str | os.PathLike | None, env_var: str, name: str, argument: str = "folder") -> Path:
    """``explicit`` if given (and not empty), else ``$env_var`` if set and not empty, else
    ``~/.cache/rsd-mini/<name>``; ``~`` is expanded. The folder is not created here.
    ``argument``: the caller's name for ``explicit``, used in the error message."""
    if explicit is not None and not isinstance(explicit, (str, os.PathLike)):
        raise ValueError(f"{argument}={explicit!r}: expected a folder path (str or os.PathLike) or None")
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    if os.environ.get(env_var):
        return Path(os.environ[env_var]).expanduser()
    return Path.home() / ".cache" / "rsd-mini" / name
