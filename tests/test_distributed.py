"""Data-parallel training (rsd_mini.fullscale.distributed): torchrun with 2 gloo processes on the CPU must
give the weights of one process on the same global batch."""

import os
import subprocess
import sys

import pytest
import torch

from rsd_mini.checkpoint import load_checkpoint
from rsd_mini.fullscale.distributed import World

SMALL = ["data.crop_size=32", "unet.image_size=32", "unet.channel_mult=[1,2]",
         "unet.num_res_blocks=[1,1]", "unet.attention_resolutions=[8]", "train.batch_size=4",
         "train.microbatch=1", "train.log_every=1", "train.num_threads=1", "optim.warmup_steps=0"]


def _run(args: list[str], processes: int, tmp_path) -> None:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
                if processes > 1 else [sys.executable])
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([*launcher, "-m", "rsd_mini", *args, "--device", "cpu", "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]


def _assert_same_weights(a: dict, b: dict) -> None:
    """Equal up to the order of the gradient sums: Adam's first step moves every weight by about
    lr = 5e-4 whatever its gradient, so a missing or doubled shard would differ by ~1e-4."""
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-5, msg=key)


def test_torchrun_gloo_two_processes_match_one_process(tmp_path):
    teacher = ["train-teacher", "--config", "tiny", "train.iterations=2", *SMALL]
    _run([*teacher, "--out", str(tmp_path / "one")], 1, tmp_path)
    _run([*teacher, "--out", str(tmp_path / "two")], 2, tmp_path)
    one, two = load_checkpoint(tmp_path / "one" / "last.pt"), load_checkpoint(tmp_path / "two" / "last.pt")
    assert one["step"] == two["step"] == 2
    assert not torch.equal(one["model"]["out.2.weight"], two["model"]["out.2.weight"] * 0)
    _assert_same_weights(one["model"], two["model"])
    log = (tmp_path / "two" / "log.jsonl").read_text().splitlines()
    assert len(log) == 2  # rank 0 alone writes the log

    distill = ["distill", "--config", "rsd-tiny", "--teacher", str(tmp_path / "one" / "last.pt"),
               "train.iterations=1", "distill.fake_steps=1", *SMALL]
    _run([*distill, "--out", str(tmp_path / "rsd1")], 1, tmp_path)
    _run([*distill, "--out", str(tmp_path / "rsd2")], 2, tmp_path)
    one, two = load_checkpoint(tmp_path / "rsd1" / "last.pt"), load_checkpoint(tmp_path / "rsd2" / "last.pt")
    _assert_same_weights(one["student"], two["student"])
    _assert_same_weights(one["fake"], two["fake"])


def test_world_shards_and_rejects_uneven_batches():
    batch = {"hr": torch.arange(6.0), "lq": torch.arange(6.0) * 10}
    shards = [World(rank, 3).shard(batch) for rank in range(3)]
    assert torch.equal(torch.cat([s["hr"] for s in shards]), batch["hr"])
    assert torch.equal(shards[2]["lq"], torch.tensor([40.0, 50.0]))
    assert World(1, 2).first_chunk(shard_size=4, microbatch=2) == 2
    with pytest.raises(ValueError, match="train.batch_size=6: expected a multiple of the 4"):
        World(0, 4).shard(batch)


def test_bad_world_size_environment_is_named(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two': expected an integer"):
        World.from_env()
