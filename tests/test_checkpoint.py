"""Atomic, weights-only checkpoints."""

import pickle

import pytest
import torch

from rsd_mini.checkpoint import (load_checkpoint, remove_stale_temporaries, rng_state, save_checkpoint,
                                 set_rng_state)


def _state(value: float) -> dict:
    return {"model": {"w": torch.full((4, 4), value)}, "step": 3, "config": {"lr": 1e-4, "tags": [1, "a", None]},
            "betas": (0.9, 0.999), "rng": rng_state()}


def test_round_trip(tmp_path):
    path = save_checkpoint(tmp_path / "sub" / "last.pt", _state(1.5))
    state = load_checkpoint(path)
    assert torch.equal(state["model"]["w"], torch.full((4, 4), 1.5))
    assert state["step"] == 3 and state["config"] == {"lr": 1e-4, "tags": [1, "a", None]}
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp files left


def test_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", _state(1.0))
    before = path.read_bytes()
    real_save = torch.save

    def save_half_then_fail(obj, file, *args, **kwargs):
        real_save(obj, file, *args, **kwargs)
        file.seek(0)
        file.truncate(100)  # partial bytes on disk, then the "disk is full"
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, _state(2.0))
    assert path.read_bytes() == before
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(4, 4))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


@pytest.mark.parametrize("content", ["truncated", "garbage", "empty"])
def test_corrupt_file_names_the_path(tmp_path, content):
    good = save_checkpoint(tmp_path / "good.pt", _state(1.0)).read_bytes()
    path = tmp_path / "bad.pt"
    path.write_bytes({"truncated": good[: len(good) // 2], "garbage": b"not a checkpoint" * 8, "empty": b""}[content])
    with pytest.raises(ValueError, match=f"checkpoint '{path}' is corrupt"):
        load_checkpoint(path)


def test_arbitrary_objects_are_refused(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"callback": pickle.Pickler}, path)  # would run/import code under weights_only=False
    with pytest.raises(ValueError, match="never runs pickled code"):
        load_checkpoint(path)
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match="holds a list: expected a dict"):
        load_checkpoint(path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        load_checkpoint(tmp_path / "nowhere.pt")


def test_rng_state_round_trip(tmp_path):
    save_checkpoint(tmp_path / "rng.pt", {"rng": rng_state()})
    expected = torch.rand(3)
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert torch.equal(torch.rand(3), expected)


def test_stale_temporaries_of_a_killed_write_are_removed(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", _state(1.0))
    stale = [tmp_path / ".last.pt.0123abcd.tmp", tmp_path / ".last.pt.ffff.tmp"]
    for tmp in stale:
        tmp.write_bytes(b"half a checkpoint")
    other = tmp_path / ".other.pt.0123.tmp"  # another file's temporary is not ours to remove
    other.write_bytes(b"x")
    assert remove_stale_temporaries(path) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.pt.0123.tmp", "last.pt"]
    assert remove_stale_temporaries(tmp_path / "absent" / "last.pt") == []
