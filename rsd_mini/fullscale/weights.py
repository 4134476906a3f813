"""The official pretrained weights: what each file is, where it lives, and a safe downloader.

RSD distils the ResShift v1 teacher in the latent space of the VQ-f4 autoencoder and compares
against SinSR (RSD_SPEC §1 "Checkpoints", §3, §4c). :data:`REGISTRY` names every released file
with its URL, licence and the official hyper-parameters needed to build the network around it
(``model.params`` of the official YAML, the diffusion settings, how inference calls it).

Files are looked up in :func:`weights_dir` (argument > ``$RSD_MINI_WEIGHTS`` >
``~/.cache/rsd-mini/weights``). :func:`locate` and :func:`require` never touch the network;
:func:`download` does, with

- resume of an interrupted download from ``<file>.part`` (HTTP ``Range``);
- size and sha256 verification *before* the file gets its final name (``os.replace``), so a
  file under the final name is always complete and checked;
- trust on first use where the publisher gives no checksum (none of the three repositories
  does): the digest of the first complete download is recorded in
  ``<weights_dir>/checksums.json`` and every later download, :func:`locate` and ``verify`` is
  checked against it.

The command line (``python -m rsd_mini weights list|download|verify``) is
:func:`add_weights_arguments` + :func:`run_weights`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType

from rsd_mini.checkpoint import fsync_directory, write_bytes_atomic
from rsd_mini.paths import user_folder

log = logging.getLogger(__name__)

#: Environment variable naming the weights folder (the offline override).
ENV_VAR = "RSD_MINI_WEIGHTS"
#: Digests recorded on first download, per file name, inside the weights folder.
CHECKSUMS_FILE = "checksums.json"
KINDS = ("unet", "autoencoder")
#: How an SR model is called: ``teacher`` = T ancestral steps (RSD_SPEC §1 "Sampler"),
#: ``one-step`` = SinSR, one call at i = T−1 (§3), ``student`` = RSD, one call at i = T−1 with
#: ``noise_channels`` extra noise inputs (§4c).
INFERENCE_KINDS = ("teacher", "one-step", "student")
_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


class WeightsIntegrityError(ValueError):
    """A file whose size or sha256 differs from the published or recorded one."""


class DownloadError(OSError):
    """The server did not deliver the file (HTTP error, HTML page, connection cut)."""


def _frozen(value):
    """A read-only copy of a YAML-like value: mappings become read-only, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass(frozen=True)
class WeightSpec:
    """One released weights file.

    ``params``: for a UNet the official YAML ``model.params`` (accepted by
    :func:`rsd_mini.fullscale.official.unet_config_from_official`); for the autoencoder
    ``{"embed_dim", "n_embed", "ddconfig"}``. ``diffusion``: the ResShift settings of an SR
    model (steps, kappa, min_noise_level, etas_end, power). ``inference``: one of
    :data:`INFERENCE_KINDS`. ``noise_channels``: extra zero-initialised input channels of the
    RSD student's first conv (official ``_add_noise``), not part of ``params``. ``sha256`` and
    ``size`` (bytes) are ``None`` where the publisher gives none. ``page``: where a person can
    download it by hand. ``source``: where these facts come from.
    """

    name: str
    filename: str
    url: str
    sha256: str | None
    size: int | None
    licence: str
    description: str
    kind: str
    params: Mapping
    diffusion: Mapping | None = None
    inference: str | None = None
    noise_channels: int = 0
    page: str = ""
    source: str = ""

    def __post_init__(self):
        self._validate()
        object.__setattr__(self, "params", _frozen(self.params))
        if self.diffusion is not None:
            object.__setattr__(self, "diffusion", _frozen(self.diffusion))

    def _validate(self) -> None:
        if not self.filename or Path(self.filename).name != self.filename:
            raise ValueError(f"filename={self.filename!r}: expected a bare file name")
        if not self.url.startswith(("https://", "http://")):
            raise ValueError(f"url={self.url!r}: expected an http(s) URL")
        if self.sha256 is not None and not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"sha256={self.sha256!r}: expected 64 lowercase hex digits or None")
        if self.size is not None and (not isinstance(self.size, int) or self.size <= 0):
            raise ValueError(f"size={self.size!r}: expected a positive number of bytes or None")
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}: expected one of {KINDS}")
        if self.kind == "unet" and (self.inference not in INFERENCE_KINDS or self.diffusion is None):
            raise ValueError(f"inference={self.inference!r}, diffusion={self.diffusion!r}: a unet "
                             f"needs diffusion settings and an inference kind in {INFERENCE_KINDS}")
        if (self.inference == "student") != (self.noise_channels > 0):
            raise ValueError(f"noise_channels={self.noise_channels!r} with inference="
                             f"{self.inference!r}: an RSD student (and only it) has noise inputs")


# ----------------------------------------------------------------------------- the registry
_RS_RELEASE = "https://github.com/zsyOAOA/ResShift/releases/download/v2.0"
_SINSR_RELEASE = "https://github.com/wyf0912/SinSR/releases/download/v1.0"
_RSD_DRIVE_ID = "1EQbO1Bw2HtGmGad4uk3g2wTFjdH22B2X"
_S_LAB = "S-Lab License 1.0 (NTU; non-commercial use)"
_CC_BY_NC_SA = "CC BY-NC-SA 4.0 (non-commercial)"


def _swin_unet_params(**changes) -> dict:
    """``model.params`` of UNetModelSwin as written in the official SR configs (RSD_SPEC §2)."""
    params = dict(image_size=64, in_channels=3, model_channels=160, out_channels=3,
                  attention_resolutions=[64, 32, 16, 8], dropout=0, channel_mult=[1, 2, 2, 4],
                  num_res_blocks=[2, 2, 2, 2], conv_resample=True, dims=2, use_fp16=False,
                  num_head_channels=32, use_scale_shift_norm=True, resblock_updown=False,
                  swin_depth=2, swin_embed_dim=192, window_size=8, mlp_ratio=4, cond_lq=True,
                  lq_size=64)
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


#: ResShift's convention: in_channels 3 + lq_size 64 (the LR channels added inside).
_RESSHIFT_PARAMS = _swin_unet_params()
#: SinSR's and RSD's convention for the same network: in_channels 6, no lq_size.
_SINSR_PARAMS = _swin_unet_params(in_channels=6, lq_size=None)
_V1_DIFFUSION = dict(steps=15, kappa=2.0, min_noise_level=0.04, etas_end=0.99, power=0.3)
_V3_DIFFUSION = dict(steps=4, kappa=2.0, min_noise_level=0.2, etas_end=0.99, power=0.3)
_VQ_F4_PARAMS = dict(embed_dim=3, n_embed=8192, ddconfig=dict(
    double_z=False, z_channels=3, resolution=256, in_channels=3, out_ch=3, ch=128,
    ch_mult=[1, 2, 4], num_res_blocks=2, attn_resolutions=[], dropout=0.0, padding_mode="zeros"))

_RS_SOURCE = "zsyOAOA/ResShift@3ce1d81 inference_resshift.py _LINK/_STEP, README model card, "
_SINSR_SOURCE = ("wyf0912/SinSR@f173549 inference.py/app.py (release v1.0 URL pattern), README, "
                 "configs/SinSR.yaml, LICENSE")


def _specs() -> list[WeightSpec]:
    rs_page = "https://github.com/zsyOAOA/ResShift/releases/tag/v2.0"
    sinsr_page = "https://github.com/wyf0912/SinSR/releases/tag/v1.0"
    resshift = dict(sha256=None, size=None, licence=_S_LAB, kind="unet", inference="teacher",
                    page=rs_page)
    sinsr = dict(sha256=None, size=None, licence=_CC_BY_NC_SA, kind="unet", params=_SINSR_PARAMS,
                 diffusion=_V1_DIFFUSION, inference="one-step", page=sinsr_page, source=_SINSR_SOURCE)
    return [
        WeightSpec("resshift-v1", "resshift_realsrx4_s15_v1.pth",
                   f"{_RS_RELEASE}/resshift_realsrx4_s15_v1.pth",
                   description="ResShift x4 real-world SR, 15 steps, NeurIPS 2023, 300k iterations; "
                               "the teacher RSD and SinSR distil",
                   params=_RESSHIFT_PARAMS, diffusion=_V1_DIFFUSION,
                   source=_RS_SOURCE + "configs/realsr_swinunet_realesrgan256.yaml, LICENSE", **resshift),
        WeightSpec("resshift-v2", "resshift_realsrx4_s15_v2.pth",
                   f"{_RS_RELEASE}/resshift_realsrx4_s15_v2.pth",
                   description="ResShift x4 real-world SR, 15 steps, NeurIPS 2023, 500k iterations",
                   params=_RESSHIFT_PARAMS, diffusion=_V1_DIFFUSION,
                   source=_RS_SOURCE + "configs/realsr_swinunet_realesrgan256.yaml, LICENSE", **resshift),
        WeightSpec("resshift-v3", "resshift_realsrx4_s4_v3.pth",
                   f"{_RS_RELEASE}/resshift_realsrx4_s4_v3.pth",
                   description="ResShift x4 real-world SR, 4 steps, journal version (MSE + LPIPS loss)",
                   params=_RESSHIFT_PARAMS, diffusion=_V3_DIFFUSION,
                   source=_RS_SOURCE + "configs/realsr_swinunet_realesrgan256_journal.yaml "
                          "(out_channels ${autoencoder.params.embed_dim} = 3), LICENSE", **resshift),
        WeightSpec("vq-f4", "autoencoder_vq_f4.pth", f"{_RS_RELEASE}/autoencoder_vq_f4.pth",
                   sha256=None, size=None, licence=_S_LAB, kind="autoencoder",
                   params=_VQ_F4_PARAMS, page=rs_page,
                   description="VQ-f4 autoencoder (VQModelTorch, 8192×3 codebook) of the latent space "
                               "of ResShift v1–v3, SinSR and RSD",
                   source=_RS_SOURCE + "configs/realsr_swinunet_realesrgan256.yaml "
                          "autoencoder.params, LICENSE"),
        WeightSpec("sinsr-v1", "SinSR_v1.pth", f"{_SINSR_RELEASE}/SinSR_v1.pth",
                   description="SinSR one-step student of ResShift v1 (README: RealSet65, ImageNet-Test)",
                   **sinsr),
        WeightSpec("sinsr-v2", "SinSR_v2.pth", f"{_SINSR_RELEASE}/SinSR_v2.pth",
                   description="SinSR one-step student, early-stopped (README: RealSR)", **sinsr),
        WeightSpec("rsd", "ema_model_2800.pth",
                   f"https://drive.usercontent.google.com/download?id={_RSD_DRIVE_ID}&export=download&confirm=t",
                   sha256=None, size=None, licence=_CC_BY_NC_SA, kind="unet", params=_SINSR_PARAMS,
                   diffusion=_V1_DIFFUSION, inference="student", noise_channels=1,
                   page=f"https://drive.google.com/file/d/{_RSD_DRIVE_ID}/view",
                   description="RSD one-step student of ResShift v1, EMA weights at iteration 2800 "
                               "(RSD paper Tables 1–3); first conv reads 6 + 1 noise channels",
                   source="Daniil-Selikhanovych/RSD@f16058d README, scripts/download_pretrained_rsd.sh "
                          "(gdown id), configs/RSD.yaml (add_noise, noise_channels 1), sampler.py "
                          "_add_noise/noise_input, LICENSE"),
    ]


#: Every released weights file, by name.
REGISTRY: dict[str, WeightSpec] = {spec.name: spec for spec in _specs()}


def get_spec(name: str | WeightSpec) -> WeightSpec:
    """The registry entry ``name`` (a :class:`WeightSpec` is returned as is)."""
    if isinstance(name, WeightSpec):
        return name
    if name not in REGISTRY:
        raise ValueError(f"name={name!r}: unknown weights; expected one of {sorted(REGISTRY)}")
    return REGISTRY[name]


# ----------------------------------------------------------------------------- where files live
def weights_dir(path: str | os.PathLike | None = None) -> Path:
    """The weights folder: ``path`` if given, else ``$RSD_MINI_WEIGHTS``, else
    ``~/.cache/rsd-mini/weights``. It is not created here."""
    return user_folder(path, ENV_VAR, "weights", "weights_dir")


#: The functions below take a ``weights_dir`` argument, which shadows :func:`weights_dir`.
_resolve_dir = weights_dir


def _checksums_path(directory: Path) -> Path:
    return directory / CHECKSUMS_FILE


def recorded_checksums(directory: str | os.PathLike | None = None) -> dict[str, dict]:
    """The contents of ``checksums.json`` (``{}`` when absent), by file name."""
    path = _checksums_path(_resolve_dir(directory))
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); fix or delete it") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: holds a {type(data).__name__}, expected an object by file name")
    return data


def _expected_sha256(spec: WeightSpec, directory: Path) -> tuple[str | None, str]:
    """The digest to check against and where it comes from (published or recorded)."""
    if spec.sha256 is not None:
        return spec.sha256, "published"
    entry = recorded_checksums(directory).get(spec.filename)
    if entry is not None:
        return entry["sha256"], f"recorded on first download in {_checksums_path(directory)}"
    return None, "none"


def _record_sha256(spec: WeightSpec, directory: Path, digest: str, size: int) -> None:
    checksums = recorded_checksums(directory)
    checksums[spec.filename] = dict(sha256=digest, size=size, url=spec.url,
                                    recorded=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    write_bytes_atomic(_checksums_path(directory), (json.dumps(checksums, indent=2, sort_keys=True) + "\n").encode())
    log.warning("%s: no published checksum; recorded sha256 %s (first download) in %s; later "
                "downloads and verify are checked against it", spec.filename, digest,
                _checksums_path(directory))


# ----------------------------------------------------------------------------- verification
def sha256_of(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: Files whose digest matched, by (path, size, modification time, digest): a file that changes
#: on disk gets a new key and is hashed again.
_VERIFIED: set[tuple[str, int, int, str]] = set()


def _check_file(spec: WeightSpec, path: Path, directory: Path) -> str | None:
    """Raise :class:`WeightsIntegrityError` unless ``path`` has the expected size and digest;
    returns the digest, or ``None`` when there is nothing to check the content against."""
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        raise WeightsIntegrityError(f"{path}: size {size} bytes, expected {spec.size} bytes "
                                    f"({spec.name}, {spec.url})")
    recorded = recorded_checksums(directory).get(spec.filename, {}).get("size")
    if recorded is not None and size != recorded:
        raise WeightsIntegrityError(f"{path}: size {size} bytes, expected {recorded} bytes (recorded on first "
                                    f"download in {_checksums_path(directory)}; {spec.name}, {spec.url})")
    expected, origin = _expected_sha256(spec, directory)
    if expected is None:
        return None
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected)
    if key in _VERIFIED:  # hashing a 500 MB file once per process is enough
        return expected
    actual = sha256_of(path)
    if actual != expected:
        raise WeightsIntegrityError(f"{path}: sha256 {actual}, expected {expected} ({origin}; "
                                    f"{spec.name}, {spec.url})")
    _VERIFIED.add(key)
    return actual


def locate(name: str | WeightSpec, weights_dir: str | os.PathLike | None = None,
           verify: bool = True) -> Path | None:
    """The file of ``name`` in the weights folder, or ``None`` if absent; never uses the network.

    With ``verify`` its size and sha256 are checked (against the published or the recorded
    digest; a file with neither is returned unchecked), and a mismatch raises
    :class:`WeightsIntegrityError` rather than returning ``None``, so a corrupt file is never
    mistaken for a missing one.
    """
    spec = get_spec(name)
    directory = _resolve_dir(weights_dir)
    path = directory / spec.filename
    if not path.is_file():
        return None
    if verify:
        _check_file(spec, path, directory)
    return path


def require(name: str | WeightSpec, weights_dir: str | os.PathLike | None = None,
            download: bool = False) -> Path:
    """The verified file of ``name``; downloads it if ``download``, else raises
    ``FileNotFoundError`` saying which file to put where, its URL and the command."""
    spec = get_spec(name)
    path = locate(spec, weights_dir)
    if path is not None:
        return path
    if download:
        return _download(spec, _resolve_dir(weights_dir), progress=True, timeout=60)
    target = _resolve_dir(weights_dir) / spec.filename
    raise FileNotFoundError(
        f"{spec.name}: {target} does not exist. Download {spec.url}"
        f"{f' (or by hand from {spec.page})' if spec.page else ''} and save it as {target}, "
        f"or run `python -m rsd_mini weights download {spec.name} --weights-dir {target.parent}`. "
        f"Another folder can be chosen with ${ENV_VAR} or weights_dir=.")


# ----------------------------------------------------------------------------- download
def download(name: str | WeightSpec, weights_dir: str | os.PathLike | None = None,
             progress: bool = True, timeout: float = 60) -> Path:
    """Download ``name`` into the weights folder and return its path (RSD_SPEC §1 "Checkpoints").

    A verified file already in place is returned without network access. Otherwise the bytes
    go to ``<file>.part`` (resumed with an HTTP ``Range`` request if it exists), the complete
    file is checked (size, sha256) and only then renamed to its final name. A mismatch deletes
    the ``.part`` and raises :class:`WeightsIntegrityError`; an interrupted transfer keeps it
    for the next call and raises :class:`DownloadError`. ``timeout``: seconds per socket
    operation.
    """
    spec = get_spec(name)
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout={timeout!r}: expected a positive number of seconds")
    return _download(spec, _resolve_dir(weights_dir), progress, timeout)


def _download(spec: WeightSpec, directory: Path, progress: bool, timeout: float) -> Path:
    target = directory / spec.filename
    if target.is_file():
        _check_file(spec, target, directory)
        return target
    directory.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    _fetch(spec, part, progress, timeout)
    try:
        digest = _check_file(spec, part, directory)
    except WeightsIntegrityError:
        part.unlink(missing_ok=True)
        raise
    _fsync_file(part)
    os.replace(part, target)
    fsync_directory(directory)
    if digest is None:
        _record_sha256(spec, directory, sha256_of(target), target.stat().st_size)
    return target


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": "rsd-mini (python urllib)"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416:  # the .part already holds every byte (or more)
            return error
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        raise DownloadError(f"{url}: {getattr(error, 'reason', error)}") from error


def _fetch(spec: WeightSpec, part: Path, progress: bool, timeout: float) -> None:
    """Bring ``part`` to the complete file: append from where it stops, or restart from zero
    when the server ignores the ``Range`` request or the ``.part`` does not fit."""
    offset = part.stat().st_size if part.is_file() else 0
    if spec.size is not None and offset == spec.size:
        return  # complete; verified by the caller
    if spec.size is not None and offset > spec.size:
        offset = 0
    with _open(spec.url, offset, timeout) as response:
        status = response.getcode()
        if status == 416:  # Range not satisfiable: the .part holds every byte, or is bogus
            if _content_range_total(response) == offset:
                return
            part.unlink()
            return _fetch(spec, part, progress, timeout)
        if "text/html" in (response.headers.get("Content-Type") or ""):
            raise DownloadError(f"{spec.url}: the server sent an HTML page instead of "
                                f"{spec.filename} (quota or confirmation page?); download it by "
                                f"hand from {spec.page or spec.url} and save it as "
                                f"{part.with_name(spec.filename)}")
        resumed = offset > 0 and status == 206
        if offset:
            log.info("%s: %s", spec.filename, f"resuming at byte {offset}" if resumed
                     else "the server ignored the Range request; restarting")
        _stream(response, part, offset if resumed else 0, spec.filename, progress)


def _content_range_total(response) -> int | None:
    """The total size in a ``Content-Range: bytes */TOTAL`` header, if any."""
    total = (response.headers.get("Content-Range") or "").rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


def _stream(response, part: Path, offset: int, filename: str, progress: bool) -> None:
    """Append the response body to ``part`` (from ``offset``); an interrupted transfer keeps
    what arrived, flushed to disk, for the next call to resume."""
    length = response.headers.get("Content-Length")
    expected = offset + int(length) if length and length.isdigit() else None
    received, shown = offset, 0.0
    with open(part, "ab" if offset else "wb") as file:
        try:
            while chunk := response.read1(_CHUNK):  # what arrived, kept on a timeout
                file.write(chunk)
                received += len(chunk)
                if progress and time.monotonic() - shown > 0.5:
                    shown = time.monotonic()
                    _show_progress(filename, received, expected)
        except (OSError, http.client.HTTPException) as error:  # timeout, reset, IncompleteRead
            interrupted = f" ({type(error).__name__}: {error})"
        else:
            interrupted = ""
        finally:
            file.flush()
            os.fsync(file.fileno())
    if progress:
        _show_progress(filename, received, expected, end="\n")
    if interrupted or (expected is not None and received != expected):
        raise DownloadError(f"{filename}: the transfer stopped after {received} of "
                            f"{expected or '?'} bytes{interrupted}; {part} is kept, run the "
                            "download again to resume")


def _show_progress(filename: str, received: int, total: int | None, end: str = "") -> None:
    done = f"{received / 1e6:8.1f} MB"
    if total:
        done += f" / {total / 1e6:.1f} MB ({100 * received / total:3.0f}%)"
    print(f"\r{filename}: {done}", end=end, file=sys.stderr, flush=True)
