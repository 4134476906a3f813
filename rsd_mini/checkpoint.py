"""Checkpoints that survive crashes and load without running pickled code.

A training run keeps one ``last.pt`` (RSD_SPEC §1 "Teacher training"). It is replaced
atomically: the new state goes to a temporary file in the same folder, is flushed to disk, and
only then renamed over the old file, so a crash or a full disk mid-write leaves the previous
checkpoint intact. Loading uses ``torch.load(weights_only=True)``, so a checkpoint may hold only
tensors and plain containers of numbers, strings, booleans and ``None`` (configs as dicts, RNG
states as tensors).

A kill during a write can leave the temporary file ``.last.pt.<hex>.tmp`` behind;
:func:`remove_stale_temporaries` deletes them when a run resumes. torch is imported only by the
functions that need it, so that :mod:`rsd_mini.fullscale.weights` (which writes atomically) and
the command line start without it.
"""

from __future__ import annotations

import os
import pickle
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable

if TYPE_CHECKING:
    import torch


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temp file + flush + fsync + ``os.replace``)."""
    import torch

    return write_atomic(path, lambda file: torch.save(state, file))


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, as :func:`save_checkpoint` does."""
    return write_atomic(path, lambda file: file.write(data))


_TEMPORARY_PREFIX = "."


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporary files that :func:`write_atomic` left beside ``path`` when a kill
    stopped it mid-write (``.NAME.<hex>.tmp``); returns them. Call it only when no other
    process writes ``path`` (e.g. when a run resumes)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = sorted(path.parent.glob(f"{_TEMPORARY_PREFIX}{path.name}.*.tmp"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def write_atomic(path: str | Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(file)`` on a temporary file in ``path``'s folder, flush and fsync it, then
    rename it over ``path``: a crash leaves either the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{_TEMPORARY_PREFIX}{path.name}.{uuid.uuid4().hex}.tmp"
    # os.open (not mkstemp) so the file gets the usual umask permissions, not 0600.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)  # make the rename itself durable
    return path


def fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises ``FileNotFoundError`` if ``path`` is missing and ``ValueError`` if it is not a
    readable checkpoint dict (truncated, corrupt, or holding arbitrary Python objects).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise
    except pickle.UnpicklingError as error:
        if "Unsupported global" not in str(error):  # not a refused object: bytes that are no pickle
            raise ValueError(f"checkpoint {str(path)!r} is corrupt or not a torch checkpoint (it does not "
                             "unpickle); re-create or re-download it") from error
        raise ValueError(f"checkpoint {str(path)!r} holds Python objects besides tensors and plain "
                         "containers; rsd_mini loads weights only (torch.load weights_only=True) and "
                         "never runs pickled code: save a state dict instead") from error
    except Exception as error:  # torch raises RuntimeError, EOFError, KeyError…
        first = str(error).strip().splitlines()[:1] or [""]
        raise ValueError(f"checkpoint {str(path)!r} is corrupt or not a torch checkpoint "
                         f"({type(error).__name__}: {first[0][:120]}); re-create or re-download it") from error
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {str(path)!r} holds a {type(state).__name__}: expected a dict")
    return state


def rng_state() -> dict[str, Any]:
    """The global torch RNG states (CPU, and every CUDA device if present) as tensors."""
    import torch

    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    import torch

    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

