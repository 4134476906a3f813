"""The command line's error boundary (issue #12): every expected failure is one line on stderr,
``rsd_mini: error: ...``, naming the argument and the value, with exit 1 (2 for usage errors,
130 for Ctrl-C) and no traceback; ``--debug`` shows the traceback. Checks come before compute.

Cases run in-process (``main(argv)``), except Ctrl-C and a few end-to-end ones.
"""

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from rsd_mini import cli, hub
from rsd_mini.checkpoint import load_checkpoint, save_checkpoint
from rsd_mini.cli import COMMANDS, Command, main

ROOT = Path(__file__).resolve().parents[1]


def run(argv: list[str], capsys) -> tuple[int, list[str], str]:
    """(exit code, non-empty stderr lines, stdout) of ``python -m rsd_mini ARGV`` in-process."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()], captured.out


class Boom:
    """A pickled object that would create a file when unpickled."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Inputs good and bad: images, folders, a plain file, checkpoints of every wrong kind."""
    root = tmp_path_factory.mktemp("cli_errors")
    f = {"tmp": root}
    rng = np.random.default_rng(0)
    f["lq"] = root / "lq"
    f["lq"].mkdir()
    f["png"] = f["lq"] / "a.png"
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(f["png"])
    f["tiffs"] = root / "tiffs"
    f["tiffs"].mkdir()
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(f["tiffs"] / "a_ok.png")
    f["tiff"] = f["tiffs"] / "b_float.tif"
    Image.fromarray(rng.random((8, 8), dtype=np.float32), mode="F").save(f["tiff"])
    f["file"] = root / "plain.txt"
    f["file"].write_text("not a folder")
    f["notimage"] = root / "notimage.png"
    f["notimage"].write_bytes(b"no image here")
    f["junk"] = root / "junk.pt"
    f["junk"].write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    f["resnet"] = root / "some_resnet.pt"
    torch.save(nn.Conv2d(3, 4, 3).state_dict(), f["resnet"])
    f["pickle"] = root / "pickled.pt"
    f["pickled_target"] = root / "pickle_ran"
    torch.save({"config": Boom(f["pickled_target"])}, f["pickle"])
    state = load_checkpoint(hub.SHIPPED["tiny-teacher"])
    state["config"]["unet"]["num_res_blocks"] = [2, 1, 1, 1]  # the weights have one block per level
    f["mismatch"] = save_checkpoint(root / "mismatch.pt", state)
    f["corrupt_run"] = root / "corrupt_run"
    f["corrupt_run"].mkdir()
    (f["corrupt_run"] / "last.pt").write_bytes(b"PK\x03\x04 truncated")
    return f


TINY = ["train.iterations=2", "train.batch_size=2", "train.microbatch=1", "train.sample_every=0",
        "optim.warmup_steps=0"]

#: (argv with {placeholders} of ``files``, exit code, a regular expression the line matches).
CASES = [
    # usage errors (argparse): exit 2
    ("bogus", 2, r"invalid choice: 'bogus'"),
    ("--threads 0 config", 2, r"argument --threads: expected a whole number of threads ≥ 1, got '0'"),
    ("evaluate --checkpoint tiny-teacher", 2, r"required: --lq, --json"),
    ("evaluate --checkpoint tiny-teacher --method bicubic --lq {lq} --json {tmp}/m.json", 2, r"not allowed with"),
    ("upscale {png} --checkpoint tiny-teacher --out {tmp}/o --tile -3", 2, r"argument --tile: expected an integer ≥ 0"),
    ("weights download nope", 2, r"nope"),
    # configs
    ("config --config nope", 1, r"argument --config: config 'nope': not a preset"),
    ("config train.lr=1", 1, r"argument SECTION\.KEY=VALUE: unknown config key 'train\.lr'.*optim\.lr"),
    ("train-teacher --config rsd-tiny --out {tmp}/r", 1, r"argument --config: 'rsd-tiny' is a distillation config"),
    ("distill --config tiny --out {tmp}/r", 1, r"argument --config: 'tiny' is a teacher config"),
    # devices
    ("train-teacher --device tpu7 --out {tmp}/r", 1, r"argument --device: 'tpu7' is not a device torch knows"),
    ("upscale {png} --checkpoint tiny-teacher --out {tmp}/o --device cuda:7", 1,
     r"argument --device: 'cuda:7' asked for, but this machine has"),
    # output paths, checked before any model loads (the checkpoint named does not exist)
    ("train-teacher --out {file} --device cpu", 1, r"argument --out: '.*plain\.txt' is a file; expected a folder"),
    ("train-teacher --out {file}/run --device cpu", 1, r"argument --out: '.*plain\.txt/run' lies under the file"),
    ("train-teacher --out /sys/rsd_mini_test --device cpu", 1,
     r"argument --out: cannot create the folder '/sys/rsd_mini_test' \(.*\); choose a writable folder"),
    ("upscale {png} --checkpoint missing.pt --out {file}", 1, r"argument --out: '.*plain\.txt' is a file"),
    ("upscale {png} --checkpoint missing.pt --out /sys", 1, r"argument --out: cannot write in '/sys'"),
    ("evaluate --checkpoint missing.pt --lq {lq} --json {tmp}", 1, r"argument --json: '.*' is a folder; expected a file"),
    ("evaluate --checkpoint missing.pt --lq {lq} --json {file}/m.json", 1, r"argument --json: '.*m\.json' lies under the file"),
    ("evaluate --checkpoint missing.pt --lq {lq} --json {tmp}/m.json --save {file}", 1, r"argument --save: .* is a file"),
    ("toy --fast --json {tmp}", 1, r"argument --json: '.*' is a folder"),
    ("reproduce --out {file}", 1, r"argument --out: '.*plain\.txt' is a file"),
    ("figures --figures {file}", 1, r"argument --figures: '.*plain\.txt' is a file"),
    # inputs, decoded before any work
    ("evaluate --checkpoint tiny-teacher --lq {tmp}/absent --json {tmp}/m.json", 1, r"argument --lq: '.*absent' is not a folder"),
    ("evaluate --method bicubic --lq {tiffs} --json {tmp}/m.json --no-progress", 1,
     r"b_float\.tif: not a readable image file \(32-bit float images"),
    ("upscale {tiff} --checkpoint missing.pt --out {tmp}/o", 1, r"argument IMAGE: .*b_float\.tif: not a readable image"),
    ("upscale {notimage} --checkpoint missing.pt --out {tmp}/o", 1, r"argument IMAGE: .*notimage\.png: not a readable image"),
    ("upscale {tmp}/absent.png --checkpoint missing.pt --out {tmp}/o", 1, r"argument IMAGE: '.*absent\.png' does not exist"),
    ("upscale {png} {lq} --checkpoint missing.pt --out {tmp}/o", 1, r"two inputs share the name 'a'"),
    ("upscale {png} --checkpoint missing.pt --out {tmp}/o --tile 32 --overlap 32", 1,
     r"argument --overlap: 32 is not smaller than --tile 32"),
    # checkpoints
    ("upscale {png} --checkpoint missing.pt --out {tmp}/o", 1, r"argument --checkpoint: 'missing\.pt' could not be loaded: .*not a shipped name"),
    ("upscale {png} --checkpoint {resnet} --out {tmp}/o", 1, r"argument --checkpoint: '.*some_resnet\.pt' is not an rsd_mini checkpoint \(no 'config' entry\)"),
    ("upscale {png} --checkpoint {junk} --out {tmp}/o", 1, r"argument --checkpoint: .* is corrupt or not a torch checkpoint .*re-create or re-download it"),
    ("upscale {png} --checkpoint {pickle} --out {tmp}/o", 1, r"argument --checkpoint: .*never runs pickled code"),
    ("upscale {png} --checkpoint {mismatch} --out {tmp}/o", 1, r"its weights do not fit the network of its config"),
    ("upscale {png} --checkpoint tiny-teacher --out {tmp}/o --steps 99", 1, r"argument --steps=99: expected a number of teacher calls in \[1, T=15\]"),
    ("evaluate --checkpoint tiny-student --lq {lq} --json {tmp}/m.json --steps 4", 1, r"argument --steps=4: an RSD student makes exactly one call"),
    ("distill --teacher {mismatch} --out {tmp}/d --device cpu", 1, r"distill\.teacher="),
    # runs
    ("train-teacher --out {corrupt_run} --device cpu --no-progress " + " ".join(TINY), 1,
     r"last\.pt.* is corrupt.*start afresh with --no-resume"),
]


@pytest.mark.parametrize("argv, code, pattern", CASES, ids=[case[0] for case in CASES])
def test_each_failure_is_one_line(files, argv, code, pattern, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    got, lines, _ = run(argv.format(**files).split(), capsys)
    assert got == code, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("rsd_mini: error: ") or lines[0].startswith("rsd_mini weights: error: "), lines
    assert "Traceback" not in lines[0]
    assert __import__("re").search(pattern, lines[0]), lines[0]


def test_a_pickle_is_refused_without_running_it(files, capsys):
    run(f"upscale {files['png']} --checkpoint {files['pickle']} --out {files['tmp']}/o".split(), capsys)
    assert not files["pickled_target"].exists()


def test_json_to_a_bad_path_fails_before_the_model_loads(files, capsys, monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the --json path was checked")

    monkeypatch.setattr("rsd_mini.evaluate.load", no_load)
    code, lines, _ = run(f"evaluate --checkpoint tiny-teacher --lq {files['lq']} --json {files['tmp']}".split(), capsys)
    assert code == 1 and "argument --json" in lines[0]


class NaNAfter(nn.Module):
    """A stand-in teacher network whose output turns NaN at its second call."""

    def __init__(self, config):
        super().__init__()
        self.config, self.conv, self.count = config, nn.Conv2d(6, 3, 3, padding=1), 0

    def forward(self, x, t, lq=None):
        self.count += 1
        return self.conv(torch.cat([x, lq], 1)) * (math.nan if self.count >= 2 else 1.0)


def test_the_nan_stop_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("rsd_mini.train._seeded_model", lambda config: NaNAfter(config.unet))
    argv = ["train-teacher", "--out", str(tmp_path / "run"), "--device", "cpu", "--no-progress", *TINY,
            "train.iterations=3", "train.microbatch=2", "train.checkpoint_every=1"]  # one call per update
    code, lines, _ = run(argv, capsys)
    assert code == 1 and len(lines) == 1
    assert "step 2: loss is nan, not finite; training stopped and the last good checkpoint" in lines[0]


def test_ctrl_c_in_process_exits_130(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(COMMANDS, "config", Command("config", COMMANDS["config"].add_arguments, interrupted))
    code, lines, _ = run(["config"], capsys)
    assert code == 130 and lines == [cli.INTERRUPTED]


def test_debug_shows_the_traceback(files, capsys, monkeypatch):
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    with pytest.raises(Exception, match="is a folder"):
        main(["--debug", "toy", "--json", str(files["tmp"])])
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(Exception, match="is a folder"):
        main(["toy", "--json", str(files["tmp"])])


def _python_m(*argv: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop(cli.DEBUG_ENV, None)
    return subprocess.Popen([sys.executable, "-m", "rsd_mini", *argv], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_end_to_end_one_line_and_exit_code(files):
    done = _python_m("upscale", str(files["png"]), "--checkpoint", str(files["resnet"]), "--out", str(files["file"]))
    out, err = done.communicate(timeout=600)  # generous: the test machine may be busy
    assert done.returncode == 1 and err.strip().count("\n") == 0 and "Traceback" not in err
    assert err.startswith("rsd_mini: error: argument --out:")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
def test_ctrl_c_exits_130_with_one_line(tmp_path):
    run_dir = tmp_path / "run"
    process = _python_m("train-teacher", "--out", str(run_dir), "--device", "cpu", "--no-progress",
                        "train.iterations=100000", "train.batch_size=2", "train.microbatch=1",
                        "train.sample_every=0", "train.checkpoint_every=100000")
    deadline = time.monotonic() + 600
    while not (run_dir / "config.yaml").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)  # config.yaml is written when the loop starts
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=600)
    lines = [line for line in err.splitlines() if line.strip()]
    assert process.returncode == 130 and lines == [cli.INTERRUPTED], err


def test_a_swallowed_ctrl_c_still_stops_a_long_loop():
    """Ctrl-C inside a finaliser is printed and ignored by Python; within the CLI's
    remembered_interrupts the next stop_if_interrupted raises it anyway, and leaving restores
    the previous handler and forgets it."""
    from rsd_mini.errors import remembered_interrupts, stop_if_interrupted

    before = signal.getsignal(signal.SIGINT)
    with remembered_interrupts():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)  # the handler runs in the main thread at the next bytecode
        except KeyboardInterrupt:
            pass  # what a finaliser's "Exception ignored" amounts to
        with pytest.raises(KeyboardInterrupt):
            stop_if_interrupted()
    assert signal.getsignal(signal.SIGINT) is before
    stop_if_interrupted()  # forgotten outside
