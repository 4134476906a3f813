"""Loading runs and shipped checkpoints as ready super-resolution models (rsd_mini.hub)."""

import pytest
import torch

import rsd_mini
from rsd_mini import hub
from rsd_mini.srmodel import SRModel
from rsd_mini.config import apply_overrides, load_config
from rsd_mini.distill_train import RSDTrainer
from rsd_mini.train import TeacherTrainer

SMALL = ["data.crop_size=32", "unet.image_size=32", "unet.channel_mult=[1,2]", "unet.num_res_blocks=[1,1]",
         "unet.attention_resolutions=[8]", "train.batch_size=2", "train.iterations=1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    teacher = TeacherTrainer(apply_overrides(load_config("tiny"), [*SMALL, f"train.out_dir={root / 'teacher'}"]),
                             device="cpu")
    teacher.fit(progress=False)
    student = RSDTrainer(apply_overrides(load_config("rsd-tiny"), [*SMALL, "distill.fake_steps=1",
                                                                   f"train.out_dir={root / 'student'}"]),
                         teacher=teacher.ema_model, device="cpu")
    student.fit(progress=False)
    return teacher, student


def test_a_teacher_run_loads_with_its_ema_weights_and_T_calls(runs):
    teacher, _ = runs
    model = hub.load(teacher.checkpoint_path)
    assert model.kind == "teacher" and model.nfe == 15 and model.scale == 4
    for key, value in teacher.ema_model.state_dict().items():
        assert torch.equal(model.network.state_dict()[key], value)
    lq = torch.rand(2, 3, 8, 8) * 2 - 1
    out = model.sr(lq, torch.Generator().manual_seed(0), calls=2)
    assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1


def test_a_student_run_makes_one_call_and_is_seeded(runs):
    _, student = runs
    model = rsd_mini.load(student.checkpoint_path)
    assert model.kind == "student" and model.nfe == 1 and model.noise_channels == 1
    lq = torch.rand(1, 3, 8, 8) * 2 - 1
    a = model.sr(lq, torch.Generator().manual_seed(1))
    assert torch.equal(a, model.sr(lq, torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="calls=4"):
        model.sr(lq, calls=4)


def test_export_halves_the_file_and_keeps_the_function(runs, tmp_path):
    _, student = runs
    shipped = hub.export(student.checkpoint_path, tmp_path / "s.pt", meta={"command": "test", "seed": 0})
    assert shipped.stat().st_size < 0.6 * student.checkpoint_path.stat().st_size
    full, small = hub.load(student.checkpoint_path), hub.load(shipped)
    assert small.meta["command"] == "test" and small.meta["steps_trained"] == 1
    lq = torch.rand(1, 3, 8, 8) * 2 - 1
    difference = (full.sr(lq, torch.Generator().manual_seed(0)) - small.sr(lq, torch.Generator().manual_seed(0)))
    assert float(difference.abs().max()) < 2e-2  # float16 storage


def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(FileNotFoundError, match="tiny-student"):
        hub.load("tiny-studnet")


def test_ship_tiny_records_command_seed_and_metrics(runs, tmp_path, monkeypatch):
    import json
    import shutil

    teacher, student = runs
    run_dir = tmp_path / "tiny"
    for sub, run in (("teacher", teacher), ("student", student)):
        (run_dir / sub).mkdir(parents=True)
        shutil.copy(run.checkpoint_path, run_dir / sub / "last.pt")
        shutil.copy(run.out_dir / "log.jsonl", run_dir / sub / "log.jsonl")
    methods = {m: {"mean_psnr": 20.0 + i} for i, m in enumerate(("bicubic", "teacher", "student"))}
    (run_dir / "metrics.json").write_text(json.dumps({"methods": methods}))
    monkeypatch.setattr(hub, "SHIPPED", {"tiny-teacher": tmp_path / "t.pt", "tiny-student": tmp_path / "s.pt"})
    written = hub.ship_tiny(run_dir)
    student_meta = hub.load(written["tiny-student"]).meta
    assert student_meta["metrics"]["mean_psnr"] == 22.0 and student_meta["seed"] == 0
    assert student_meta["command"] == "make reproduce" and student_meta["bicubic"]["mean_psnr"] == 20.0
    assert (tmp_path / "s.log.jsonl").read_text() == (run_dir / "student" / "log.jsonl").read_text()
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        hub.ship_tiny(tmp_path / "nowhere")


def test_shipped_checkpoints_load_and_beat_untrained_baselines():
    """The committed tiny-teacher / tiny-student (make reproduce + make ship) on 4 mini val crops."""
    from rsd_mini.config import load_config
    from rsd_mini.reproduce import bicubic_sampler, evaluate, one_step_sampler, teacher_sampler, validation_batch

    teacher, student = hub.load("tiny-teacher"), hub.load("tiny-student")
    assert teacher.meta["command"] == "make reproduce" and student.meta["steps_trained"] > 0
    assert all(p.stat().st_size <= 7 * 10 ** 6 for p in hub.SHIPPED.values())  # ≤ 7 MB each
    untrained = SRModel(type(teacher.network)(teacher.network.config).eval(), teacher.process, "teacher", 4)
    samplers = {"bicubic": (bicubic_sampler, 0), "untrained": (one_step_sampler(untrained.network, teacher.process, 0), 1),
                "teacher": (teacher_sampler(teacher.network, teacher.process), 15),
                "student": (one_step_sampler(student.network, student.process, 1), 1)}
    m = evaluate(samplers, validation_batch(load_config("tiny"), limit=4), scale=4)["methods"]
    for name in ("teacher", "student"):  # detail and LR consistency neither baseline has
        for baseline in ("bicubic", "untrained"):
            assert m[name]["mean_high_frequency_ratio"] > 2 * m[baseline]["mean_high_frequency_ratio"], (name, baseline)
            assert m[name]["mean_lr_fidelity"] > m[baseline]["mean_lr_fidelity"] + 3, (name, baseline)
    assert abs(m["student"]["mean_psnr"] - m["teacher"]["mean_psnr"]) < 1.0  # one step ≈ fifteen


def test_a_foreign_state_dict_is_refused_with_a_clear_message(tmp_path):
    from rsd_mini.errors import UserError

    path = tmp_path / "some_resnet.pt"
    torch.save({"conv1.weight": torch.zeros(2, 3, 1, 1)}, path)
    with pytest.raises(UserError, match=r"'.*some_resnet\.pt' is not an rsd_mini checkpoint \(no 'config' entry\)"):
        rsd_mini.load(path)
