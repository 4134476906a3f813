"""Expected failures: the one exception the command line prints as a single line, and the
checks of output paths and devices that raise it before any model loads (issue #12).

Library code raises :class:`UserError` for a failure the user can fix: a bad argument, file,
checkpoint or output path. :func:`rsd_mini.cli.main` prints ``rsd_mini: error: <message>`` on
stderr and exits 1, without a traceback (``--debug`` or ``RSD_MINI_DEBUG=1`` shows it). Every
message names the argument, the value and what to do.

This module imports no torch at import time, so argument checks stay instant.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class UserError(Exception):
    """A failure the user can fix; its message is the whole explanation (one line)."""


def one_line(text: str) -> str:
    """``text`` on one line: its non-empty lines, stripped, joined by ``; `` (by a space after
    a line that ends in a colon)."""
    joined = ""
    for line in (line.strip() for line in str(text).splitlines()):
        if line:
            joined += (" " if joined.endswith(":") else "; " if joined else "") + line
    return joined


def _blocking_file(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` (or ``path`` itself) that is not a folder."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def _probe(folder: Path, flag: str, shown: Path) -> None:
    """Create and remove an empty file in ``folder`` to prove it is writable."""
    probe = folder / f".rsd_mini-probe-{uuid.uuid4().hex}.tmp"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        probe.unlink()
    except OSError as error:
        target = "" if shown == folder else f" for {str(shown)!r}"
        raise UserError(f"argument {flag}: cannot write in {str(folder)!r}{target} ({error.strerror}); "
                        "choose a writable folder") from error


def _make_folder(folder: Path, flag: str, shown: Path) -> None:
    blocking = _blocking_file(folder)
    if blocking is not None:
        where = "is a file" if blocking == shown else f"lies under the file {str(blocking)!r}"
        raise UserError(f"argument {flag}: {str(shown)!r} {where}; expected a folder (created if "
                        "missing): choose another path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"argument {flag}: cannot create the folder {str(folder)!r} ({error.strerror}); "
                        "choose a writable folder") from error


def output_folder(path: str | os.PathLike, flag: str) -> Path:
    """Create folder ``path`` (and its parents) if missing and check it is writable; a
    :class:`UserError` naming ``flag`` otherwise. Returns ``path`` as a :class:`Path`."""
    path = Path(path)
    _make_folder(path, flag, path)
    _probe(path, flag, path)
    return path


def output_file(path: str | os.PathLike, flag: str) -> Path:
    """Check that file ``path`` can be written: not a folder, its folder created and writable;
    a :class:`UserError` naming ``flag`` otherwise. Nothing is written at ``path`` itself."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"argument {flag}: {str(path)!r} is a folder; expected a file name, e.g. "
                        f"{str(path / 'metrics.json')!r}")
    _make_folder(path.parent, flag, path)
    _probe(path.parent, flag, path)
    return path


def device(text: str | None, flag: str = "--device") -> str:
    """The device named by ``text`` (default ``cuda`` if available, else ``cpu``), checked
    to exist here; a :class:`UserError` naming ``flag`` otherwise."""
    import torch  # here: the checks above stay free of torch

    if text is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(text)
    except (RuntimeError, TypeError) as error:
        raise UserError(f"argument {flag}: {text!r} is not a device torch knows; expected cpu, cuda, "
                        "cuda:N or mps") from error
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(parsed.type, False):
        raise UserError(f"argument {flag}: {text!r} asked for, but this machine has no {parsed.type} "
                        "device; use --device cpu")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise UserError(f"argument {flag}: {text!r} asked for, but this machine has {count} CUDA "
                        f"device(s); use cuda:0 to cuda:{count - 1}")
    return text


def int_at_least(minimum: int):
    """An argparse ``type``: an integer ≥ ``minimum``, else the usage error "expected an integer
    ≥ minimum, got 'text'"."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer ≥ {minimum}, got {text!r}")
        return value
    return parse


# --------------------------------------------------------------------- Ctrl-C
_INTERRUPTED = threading.Event()


@contextmanager
def remembered_interrupts() -> Iterator[None]:
    """Within it (main thread only), Ctrl-C raises KeyboardInterrupt as usual *and* is remembered,
    so a long loop that calls :func:`stop_if_interrupted` stops even when the KeyboardInterrupt
    was raised inside a finaliser or callback, where Python prints and ignores it. The CLI wraps
    every command in it; the previous handler is restored on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        _INTERRUPTED.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    _INTERRUPTED.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
        _INTERRUPTED.clear()


def stop_if_interrupted() -> None:
    """Raise KeyboardInterrupt if Ctrl-C came within :func:`remembered_interrupts` (a no-op otherwise)."""
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt
