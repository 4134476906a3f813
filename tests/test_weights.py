"""The official-weights registry and downloader (rsd_mini.fullscale.weights), without network access.

Downloads are served from memory by a tiny HTTP server on 127.0.0.1 that understands
``Range`` (``http.server.SimpleHTTPRequestHandler`` does not) and can misbehave on request.
"""

import argparse
import hashlib
import json
import logging
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from rsd_mini.fullscale import weights, weights_command
from rsd_mini.fullscale.official import official_state_dict, unet_config_from_official
from rsd_mini.unet import SwinUNet
from rsd_mini.fullscale.weights import (REGISTRY, DownloadError, WeightSpec, WeightsIntegrityError,
                              download, locate, require)

REFERENCE = Path(__file__).resolve().parent.parent / "data" / "reference"
PAYLOAD = bytes(range(256)) * 700  # 179,200 bytes: several read chunks of the server


class FakeServer:
    """Serves ``files`` (path → bytes) and records each request's path and Range header.

    ``ignore_range``: answer 200 with the whole file. ``cut_after``: announce the full length
    but close the connection after this many bytes. ``stall_after``: send this many bytes,
    then stall for a second. ``content_type``: the header to send.
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.ignore_range = False
        self.cut_after: int | None = None
        self.stall_after: int | None = None
        self.content_type = "application/octet-stream"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                data = server.files.get(self.path)
                if data is None:
                    return self.send_error(404)
                start = 0
                range_header = self.headers.get("Range")
                if range_header and not server.ignore_range:
                    start = int(range_header.removeprefix("bytes=").rstrip("-"))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        return self.end_headers()
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Type", server.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.stall_after is not None:
                    self.wfile.write(body[:server.stall_after])
                    self.wfile.flush()
                    time.sleep(1.0)
                    return
                self.wfile.write(body if server.cut_after is None else body[:server.cut_after])

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    fake = FakeServer()
    fake.files["/toy.pth"] = PAYLOAD
    yield fake
    fake.close()


def toy_spec(server, **changes) -> WeightSpec:
    fields = dict(name="toy", filename="toy.pth", url=server.url("/toy.pth"),
                  sha256=hashlib.sha256(PAYLOAD).hexdigest(), size=len(PAYLOAD), licence="test",
                  description="served by the test", kind="autoencoder", params={})
    fields.update(changes)
    return WeightSpec(**fields)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ----------------------------------------------------------------------------- download
def test_download_verifies_and_places_the_file(server, tmp_path):
    path = download(toy_spec(server), tmp_path, progress=False)
    assert path == tmp_path / "toy.pth"
    assert path.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == ["toy.pth"]  # no .part, no temp files
    assert [r for _, r in server.requests] == [None]


def test_download_by_registry_name(server, tmp_path, monkeypatch):
    monkeypatch.setitem(REGISTRY, "toy", toy_spec(server))
    assert download("toy", tmp_path, progress=False).read_bytes() == PAYLOAD


def test_present_verified_file_is_returned_without_network(server, tmp_path):
    (tmp_path / "toy.pth").write_bytes(PAYLOAD)
    assert download(toy_spec(server), tmp_path, progress=False) == tmp_path / "toy.pth"
    assert server.requests == []


def test_resume_from_a_partial_file_uses_range(server, tmp_path):
    done = 70_000
    (tmp_path / "toy.pth.part").write_bytes(PAYLOAD[:done])
    path = download(toy_spec(server), tmp_path, progress=False)
    assert server.requests == [("/toy.pth", f"bytes={done}-")]
    assert path.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == ["toy.pth"]


def test_resume_restarts_when_the_server_ignores_range(server, tmp_path):
    server.ignore_range = True
    (tmp_path / "toy.pth.part").write_bytes(b"x" * 1000)  # wrong bytes: must be overwritten
    assert download(toy_spec(server), tmp_path, progress=False).read_bytes() == PAYLOAD


def test_complete_part_file_is_verified_and_renamed(server, tmp_path):
    (tmp_path / "toy.pth.part").write_bytes(PAYLOAD)
    # Size unknown: the downloader asks for the rest and gets 416 "nothing left".
    path = download(toy_spec(server, size=None), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD and leftovers(tmp_path) == ["toy.pth"]
    assert server.requests == [("/toy.pth", f"bytes={len(PAYLOAD)}-")]  # no second, full transfer


def test_complete_part_of_known_size_needs_no_request(server, tmp_path):
    (tmp_path / "toy.pth.part").write_bytes(PAYLOAD)
    assert download(toy_spec(server), tmp_path, progress=False).read_bytes() == PAYLOAD
    assert server.requests == []


def test_checksum_mismatch_raises_and_leaves_no_file(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(WeightsIntegrityError) as info:
        download(toy_spec(server, sha256=wrong), tmp_path, progress=False)
    message = str(info.value)
    assert "toy.pth" in message and wrong in message and hashlib.sha256(PAYLOAD).hexdigest() in message
    assert leftovers(tmp_path) == []


def test_size_mismatch_raises_and_leaves_no_file(server, tmp_path):
    with pytest.raises(WeightsIntegrityError, match=f"size {len(PAYLOAD)} bytes, expected 12345"):
        download(toy_spec(server, size=12345), tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_cut_connection_keeps_part_for_resume(server, tmp_path):
    server.cut_after = 50_000
    spec = toy_spec(server, sha256=None, size=None)
    with pytest.raises(DownloadError, match="run the download again to resume"):
        download(spec, tmp_path, progress=False)
    assert leftovers(tmp_path) == ["toy.pth.part"]  # nothing under the final name, no digest
    server.cut_after = None
    assert download(spec, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert server.requests[-1][1] == "bytes=50000-"


def test_stalled_transfer_times_out_and_keeps_part(server, tmp_path):
    server.stall_after = 30_000
    with pytest.raises(DownloadError, match="TimeoutError.*run the download again to resume"):
        download(toy_spec(server), tmp_path, progress=False, timeout=0.2)
    assert leftovers(tmp_path) == ["toy.pth.part"]
    assert (tmp_path / "toy.pth.part").read_bytes() == PAYLOAD[:30_000]


def test_bad_timeout_is_rejected(server, tmp_path):
    with pytest.raises(ValueError, match="timeout=0"):
        download(toy_spec(server), tmp_path, timeout=0)


def test_html_page_instead_of_the_file_is_an_error(server, tmp_path):
    server.content_type = "text/html; charset=utf-8"
    with pytest.raises(DownloadError, match="HTML page"):
        download(toy_spec(server), tmp_path, progress=False)
    assert not (tmp_path / "toy.pth").exists()


def test_http_error_names_the_url(server, tmp_path):
    spec = toy_spec(server, url=server.url("/missing.pth"))
    with pytest.raises(DownloadError, match="missing.pth: HTTP 404"):
        download(spec, tmp_path, progress=False)


def test_first_download_records_the_digest_then_enforces_it(server, tmp_path, caplog):
    spec = toy_spec(server, sha256=None, size=None)
    with caplog.at_level(logging.WARNING, logger="rsd_mini.fullscale.weights"):
        download(spec, tmp_path, progress=False)
    recorded = json.loads((tmp_path / "checksums.json").read_text())["toy.pth"]
    assert recorded["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert recorded["size"] == len(PAYLOAD)
    assert "recorded sha256" in caplog.text
    # The publisher's file changes: a fresh download no longer matches the recorded digest.
    (tmp_path / "toy.pth").unlink()
    server.files["/toy.pth"] = PAYLOAD[::-1]
    with pytest.raises(WeightsIntegrityError, match="recorded on first download"):
        download(spec, tmp_path, progress=False)
    assert leftovers(tmp_path) == ["checksums.json"]
    # A local file that was altered is caught by locate() too.
    (tmp_path / "toy.pth").write_bytes(PAYLOAD[::-1])
    with pytest.raises(WeightsIntegrityError, match="sha256"):
        locate(spec, tmp_path)


# ----------------------------------------------------------------------------- offline lookup
def test_weights_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(weights.ENV_VAR, raising=False)
    assert weights.weights_dir() == tmp_path / "home" / ".cache" / "rsd-mini" / "weights"
    monkeypatch.setenv(weights.ENV_VAR, str(tmp_path / "env"))
    assert weights.weights_dir() == tmp_path / "env"
    assert weights.weights_dir(tmp_path / "arg") == tmp_path / "arg"


def test_locate_and_require_use_env_var_and_never_the_network(server, tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network used")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv(weights.ENV_VAR, str(tmp_path))
    spec = toy_spec(server)
    assert locate(spec) is None
    with pytest.raises(FileNotFoundError) as info:
        require(spec)
    message = str(info.value)
    for part in (str(tmp_path / "toy.pth"), spec.url, "python -m rsd_mini weights download toy"):
        assert part in message
    (tmp_path / "toy.pth").write_bytes(PAYLOAD)
    assert locate(spec) == tmp_path / "toy.pth" == require(spec)
    assert server.requests == []


def test_require_can_download(server, tmp_path):
    assert require(toy_spec(server), tmp_path, download=True).read_bytes() == PAYLOAD


def test_unknown_name_lists_the_known_names(tmp_path):
    with pytest.raises(ValueError, match="resshift-v1") as info:
        locate("resshift-v9", tmp_path)
    assert "'resshift-v9'" in str(info.value) and "rsd" in str(info.value)


@pytest.mark.parametrize("field, value", [("kind", "vae"), ("sha256", "abc"), ("size", 0),
                                          ("filename", "a/b.pth"), ("url", "ftp://x/y.pth")])
def test_bad_spec_fields_are_rejected(server, field, value):
    with pytest.raises(ValueError, match=field):
        toy_spec(server, **{field: value})


# ----------------------------------------------------------------------------- the registry
def test_registry_entries_are_complete():
    assert set(REGISTRY) == {"resshift-v1", "resshift-v2", "resshift-v3", "vq-f4",
                             "sinsr-v1", "sinsr-v2", "rsd"}
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.url.startswith("https://"), name
        assert spec.filename.endswith((".pth", ".ckpt")), name
        assert spec.kind in weights.KINDS and spec.licence and spec.description, name
    assert {s.inference for s in REGISTRY.values() if s.kind == "unet"} == {"teacher", "one-step", "student"}
    assert REGISTRY["rsd"].noise_channels == 1 and REGISTRY["rsd"].filename == "ema_model_2800.pth"


def test_registry_diffusion_settings_match_the_reference_schedules():
    reference = json.loads((REFERENCE / "resshift_schedules.json").read_text())
    assert dict(REGISTRY["resshift-v1"].diffusion) == reference["resshift_v1_x4_T15"]["config"]
    assert dict(REGISTRY["resshift-v3"].diffusion) == reference["resshift_v3_x4_T4"]["config"]
    for name in ("resshift-v2", "sinsr-v1", "sinsr-v2", "rsd"):  # all distil / extend v1
        assert REGISTRY[name].diffusion == REGISTRY["resshift-v1"].diffusion, name


def test_registry_unet_params_build_the_official_v1_layout():
    reference = json.loads((REFERENCE / "unet_swin_v1_layout.json").read_text())
    config = unet_config_from_official(REGISTRY["resshift-v1"].params)
    with torch.device("meta"):  # shapes only, no memory, no time
        model = SwinUNet(config)
    state = official_state_dict(model)
    assert {k: list(v.shape) for k, v in state.items()} == reference["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == reference["num_parameters"]
    for name, spec in REGISTRY.items():  # every SR model is the same network (RSD_SPEC §2)
        if spec.kind == "unet":
            assert unet_config_from_official(spec.params) == config, name


def test_registry_autoencoder_params_match_the_reference():
    reference = json.loads((REFERENCE / "vq_f4_layout.json").read_text())["config"]
    params = REGISTRY["vq-f4"].params
    thawed = json.loads(json.dumps({k: dict(v) if k == "ddconfig" else v for k, v in params.items()},
                                   default=list))
    assert thawed == reference


def test_spec_params_are_read_only():
    with pytest.raises(TypeError):
        REGISTRY["resshift-v1"].params["model_channels"] = 1


# ----------------------------------------------------------------------------- command line
def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    weights_command.add_weights_arguments(parser)
    return weights_command.run_weights(parser.parse_args(argv))


#: A small VQ autoencoder (the official layout at a fraction of the width), for content checks.
SMALL_VQ = dict(embed_dim=3, n_embed=16, ddconfig=dict(double_z=False, z_channels=3, resolution=64, in_channels=3,
                                                       out_ch=3, ch=32, ch_mult=[1, 1, 2], num_res_blocks=1,
                                                       attn_resolutions=[], dropout=0.0, padding_mode="zeros"))


def small_vq_bytes(tmp_path: Path) -> bytes:
    from rsd_mini.fullscale.autoencoder import VQAutoencoder, VQConfig

    torch.save({"state_dict": VQAutoencoder(VQConfig.from_official(SMALL_VQ)).state_dict()}, tmp_path / "vq.pth")
    return (tmp_path / "vq.pth").read_bytes()


def test_cli_list_download_verify(server, tmp_path, monkeypatch, capsys):
    payload = server.files["/toy.pth"] = small_vq_bytes(tmp_path)
    monkeypatch.setitem(REGISTRY, "toy", toy_spec(server, sha256=None, size=len(payload), params=SMALL_VQ))
    assert run_cli("list", "--weights-dir", str(tmp_path)) == 0
    lines = capsys.readouterr().out.splitlines()
    toy_line = next(line for line in lines if line.startswith("toy "))
    assert "absent" in toy_line and "test" in toy_line
    assert any(line.startswith("rsd ") and "CC BY-NC-SA" in line for line in lines)

    assert run_cli("download", "toy", "--quiet", "--weights-dir", str(tmp_path)) == 0
    assert (tmp_path / "toy.pth").read_bytes() == payload
    assert run_cli("verify", "--weights-dir", str(tmp_path)) == 0
    assert "toy: ok" in capsys.readouterr().out

    (tmp_path / "toy.pth").write_bytes(payload[:-1] + b"!")
    assert run_cli("verify", "toy", "--weights-dir", str(tmp_path)) == 1
    assert "MISMATCH" in capsys.readouterr().out
    assert run_cli("verify", "resshift-v1", "--weights-dir", str(tmp_path)) == 1  # absent
    assert run_cli("download", "nope", "--weights-dir", str(tmp_path)) == 2
    assert "resshift-v1" in capsys.readouterr().err


def test_cli_download_failure_returns_1(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(REGISTRY, "toy", toy_spec(server, sha256="f" * 64))
    assert run_cli("download", "toy", "--quiet", "--weights-dir", str(tmp_path)) == 1
    assert "sha256" in capsys.readouterr().err
    assert not (tmp_path / "toy.pth").exists()


def test_a_verified_file_is_hashed_once_until_it_changes(tmp_path, monkeypatch):
    spec = WeightSpec(name="toy", filename="toy.pth", url="https://example.invalid/toy.pth",
                      sha256=hashlib.sha256(PAYLOAD).hexdigest(), size=len(PAYLOAD), licence="test",
                      description="a local file", kind="autoencoder", params={})
    (tmp_path / "toy.pth").write_bytes(PAYLOAD)
    calls = []
    real = weights.sha256_of
    monkeypatch.setattr(weights, "sha256_of", lambda path: calls.append(path) or real(path))
    for _ in range(3):
        assert weights.locate(spec, tmp_path) == tmp_path / "toy.pth"
    assert len(calls) == 1
    corrupt = bytearray(PAYLOAD)
    corrupt[0] ^= 1
    (tmp_path / "toy.pth").write_bytes(bytes(corrupt))
    time.sleep(0.01)
    (tmp_path / "toy.pth").touch()  # a new modification time: checked again, and caught
    with pytest.raises(WeightsIntegrityError, match="sha256"):
        weights.locate(spec, tmp_path)


# ----------------------------------------------------------------------------- verify: size and contents
def _local_spec(**changes) -> WeightSpec:
    fields = dict(name="toy", filename="toy.pth", url="https://example.invalid/toy.pth", sha256=None, size=None,
                  licence="test", description="a local file", kind="autoencoder", params=SMALL_VQ)
    return WeightSpec(**dict(fields, **changes))


@pytest.mark.parametrize("content, message", [
    ("random", r"toy: MISMATCH: .*toy\.pth: not a torch checkpoint that opens with weights_only=True"),
    ("wrong network", r"toy: MISMATCH: checkpoint .*toy\.pth does not fit the model: missing \(\d+\).*"
                      r"not the toy weights\?\); download it again: python -m rsd_mini weights download toy"),
    ("pickle", r"toy: MISMATCH: .*not a torch checkpoint that opens with weights_only=True"),
])
def test_verify_catches_junk_under_an_official_name(content, message, tmp_path, monkeypatch, capsys):
    """No published size or digest: ``verify`` still opens the file (weights only) and checks
    its tensor names and shapes against the network of the registry's params."""
    monkeypatch.setitem(REGISTRY, "toy", _local_spec())
    path = tmp_path / "toy.pth"
    if content == "random":
        path.write_bytes(torch.randint(0, 256, (100_000,), dtype=torch.uint8,
                                       generator=torch.Generator().manual_seed(0)).numpy().tobytes())
    elif content == "wrong network":
        torch.save(torch.nn.Conv2d(3, 4, 3).state_dict(), path)
    else:
        torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": argparse.Namespace}, path)
    assert run_cli("verify", "toy", "--weights-dir", str(tmp_path)) == 1
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and __import__("re").search(message, out), out


def test_verify_passes_the_right_file_and_checks_the_recorded_size(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(REGISTRY, "toy", _local_spec())
    payload = small_vq_bytes(tmp_path)
    (tmp_path / "toy.pth").write_bytes(payload)
    assert run_cli("verify", "toy", "--weights-dir", str(tmp_path)) == 0
    assert "toy: unverified (no published or recorded checksum" in capsys.readouterr().out
    (tmp_path / weights.CHECKSUMS_FILE).write_text(json.dumps({"toy.pth": dict(
        sha256=hashlib.sha256(payload).hexdigest(), size=len(payload) + 1)}))
    assert run_cli("verify", "toy", "--weights-dir", str(tmp_path)) == 1
    assert f"size {len(payload)} bytes, expected {len(payload) + 1} bytes (recorded" in capsys.readouterr().out
