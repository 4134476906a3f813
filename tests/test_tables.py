"""The paper's tables as data and their reproduction (rsd_mini.fullscale.tables), without weights, data
sets, pyiqa or network: models and test sets are injected, the folders are written here."""

import argparse
import json
import math
from types import SimpleNamespace

import pytest
import torch

from rsd_mini import metrics, viz
from rsd_mini.fullscale import tables
from rsd_mini.data import save_image
from rsd_mini.evaluate import evaluate_folder
from rsd_mini.hub import load
from rsd_mini.fullscale.tables import (FID_REASON, PAPER_TABLES, REPRODUCIBLE, Column, Table, format_table, load_table,
                             paper_markdown, paper_table, reproduce_table)


@pytest.fixture
def no_pyiqa(monkeypatch):
    """Perceptual metrics behave as without pyiqa, whatever is installed."""
    def missing(name, device="cpu"):
        raise RuntimeError(f"the {name} metric needs pyiqa (test stand-in)")
    monkeypatch.setattr(metrics, "perceptual_metric", missing)


@pytest.fixture
def paired(tmp_path):
    """Two 16² LR / 64² HR pairs (HR: smooth random fields), and an LR-only folder."""
    generator = torch.Generator().manual_seed(0)
    for name in ("a", "b"):
        hr = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=generator), size=64,
                                             mode="bicubic", align_corners=False).clamp(0, 1)[0]
        lq = torch.nn.functional.interpolate(hr[None], size=16, mode="area")[0]
        save_image(hr, tmp_path / "gt" / f"{name}.png")
        save_image(lq, tmp_path / "lq" / f"{name}.png")
    return SimpleNamespace(lq=tmp_path / "lq", gt=tmp_path / "gt", count=2)


def _locate(sets):
    return lambda name, root=None: sets.get(name)


def _load(models):
    def load_model(name, weights_dir=None, device="cpu"):
        if name not in models:
            raise FileNotFoundError(f"weights absent: stand-in has no {name}")
        return models[name]
    return load_model


# ----------------------------------------------------------------------------- the paper's numbers
@pytest.mark.parametrize("number", sorted(PAPER_TABLES))
def test_every_paper_table_is_consistent(number):
    from rsd_mini.fullscale.weights import REGISTRY

    table = paper_table(number)
    keys = [c.key for c in table.columns]
    assert len(keys) == len(set(keys)), f"Table {number}: duplicate columns"
    assert all(c.metric in tables.METRICS and c.dataset in tables.DATASET_LABELS for c in table.columns)
    methods = [row.method for row in table.rows]
    assert len(methods) == len(set(methods)) and methods
    for row in table.rows:
        assert len(row.values) == len(table.columns), row.method
        assert all(v is not None and math.isfinite(v) and v > 0 for v in row.values), row.method
        assert isinstance(row.nfe, int) and row.nfe >= 1
        assert row.model is None or row.model in REGISTRY, row.model
        assert row.model is not None or row.unavailable, f"{row.method}: no weights and no reason"
        for column, value in zip(table.columns, row.values):
            if column.metric in ("ssim", "lpips", "dists", "clipiqa", "maniqa-pipal"):
                assert value < 1, (row.method, column.key, value)


def test_ablation_rows_repeat_the_main_tables():
    """The same model appears in several tables of [P]; its numbers must agree (catches typos)."""
    t1, t2, t5, t6, t20 = (paper_table(n) for n in (1, 2, 5, 6, 20))
    realsr = [Column("realsr", m) for m in ("psnr", "lpips", "clipiqa", "musiq")]
    for column in realsr:  # Table 5's N=4 row and Table 6's first row are RSD distill-only
        distill_only = t1.value("RSD (distill only)", column)
        assert t5.value("N=4 (RSD distill only)", column) == pytest.approx(distill_only, abs=6e-4)
        assert t6.value("none (λ₁ = λ₂ = 0)", column) == t5.value("N=4 (RSD distill only)", column)
        assert t6.value("LPIPS + GAN (RSD)", column) == pytest.approx(t1.value("RSD", column), abs=6e-4)
    for metric in ("psnr", "ssim", "lpips", "clipiqa", "musiq"):
        column = Column("realsr", metric)
        assert t20.value("K=5 (RSD)", column) == pytest.approx(t1.value("RSD", column), abs=6e-4)
    lpips = Column("imagenet-test", "lpips")
    assert t20.value("K=5 (RSD)", lpips) == t2.value("RSD", lpips)


def test_rsd_rows_match_the_official_readme():
    """Numbers of Daniil-Selikhanovych/RSD README.md ("Results"), an independent transcription."""
    readme = {(1, "realsr", "psnr"): 25.91, (1, "realsr", "ssim"): 0.754, (1, "realsr", "lpips"): 0.273,
              (1, "realsr", "clipiqa"): 0.7060, (1, "realsr", "musiq"): 65.860, (1, "realset65", "clipiqa"): 0.7267,
              (1, "realset65", "musiq"): 69.172, (2, "imagenet-test", "psnr"): 24.31,
              (2, "imagenet-test", "lpips"): 0.1930, (2, "imagenet-test", "musiq"): 58.947,
              (3, "div2k-val-512", "niqe"): 5.1987, (3, "drealsr-512", "maniqa-pipal"): 0.5625,
              (3, "realsr-512", "clipiqa"): 0.6793, (3, "realsr-512", "dists"): 0.2205}
    for (number, dataset, metric), value in readme.items():
        assert paper_table(number).value("RSD", Column(dataset, metric)) == value, (number, dataset, metric)


def test_paper_printouts_list_the_paper_numbers():
    text, markdown = format_table(3), paper_markdown(1)
    assert "172.26" in text and "DRealSR" in text  # ResShift FID on DRealSR crops
    assert "69.172" in markdown and "Real-ESRGAN" in markdown and markdown.count("\n| ") == 13  # header, rule, 11 rows


# ----------------------------------------------------------------------------- reproduction
def test_nothing_present_leaves_every_cell_empty_with_a_reason(tmp_path, capsys):
    table = reproduce_table(1, weights_dir=tmp_path / "w", data_root=tmp_path / "d", out=tmp_path / "out")
    cells = [cell for row in table.rows for cell in row.cells.values()]
    assert cells and all(cell.ours is None and cell.delta is None and cell.reason for cell in cells)
    rsd = table.row("RSD").cells["realsr/psnr"]
    assert "data absent" in rsd.reason and "weights absent" in rsd.reason and "ema_model_2800.pth" in rsd.reason
    assert str(tmp_path / "w") in rsd.reason and rsd.paper == 25.91
    assert "third-party" in table.row("OSEDiff").cells["realsr/psnr"].reason
    text = str(table)
    assert "25.91" in text and "69.172" in text and "weights absent" in text
    assert (tmp_path / "out" / "table1.json").is_file() and (tmp_path / "out" / "table1.md").is_file()


def test_weights_absent_is_reported_when_the_data_is_present(tmp_path, paired):
    table = reproduce_table(6, weights_dir=tmp_path / "w", locate_data=_locate({"realsr": paired}))
    reason = table.row("LPIPS + GAN (RSD)").cells["realsr/psnr"].reason
    assert reason.startswith("weights absent") and "autoencoder_vq_f4.pth" in reason and "data" not in reason


def test_injected_models_fill_the_cells(tmp_path, paired, no_pyiqa):
    lq_only = SimpleNamespace(lq=paired.lq, gt=None, count=2)
    student = load("tiny-student")
    table = reproduce_table(1, out=tmp_path / "out", load_model=_load({"resshift-v1": "bicubic", "rsd": student}),
                            locate_data=_locate({"realsr": paired, "realset65": lq_only}))
    paper = paper_table(1)
    expected = evaluate_folder("bicubic", paired.lq, paired.gt, seed=12345, tile=512, overlap=64)
    for method, model_psnr in (("ResShift (v1)", expected["mean_psnr"]), ("RSD", None)):
        row = table.row(method)
        for metric in ("psnr", "ssim"):
            cell, column = row.cells[f"realsr/{metric}"], Column("realsr", metric)
            assert cell.ours is not None and cell.reason is None
            assert cell.paper == paper.value(method, column)
            assert cell.delta == pytest.approx(cell.ours - paper.value(method, column))
        if model_psnr is not None:
            assert row.cells["realsr/psnr"].ours == pytest.approx(model_psnr)
        assert "pyiqa" in row.cells["realsr/lpips"].reason and "pyiqa" in row.cells["realset65/musiq"].reason
        assert row.runs["realsr"]["num_images"] == 2
    assert table.row("RSD").runs["realsr"]["nfe"] == 1
    assert table.row("SinSR").cells["realsr/psnr"].reason.startswith("weights absent: stand-in")
    written = json.loads((tmp_path / "out" / "table1.json").read_text())
    assert written == json.loads(json.dumps(table.to_dict()))
    psnr = next(c for c in written["rows"][0]["cells"] if c["metric"] == "psnr")
    assert psnr["delta"] == pytest.approx(psnr["ours"] - 26.49)  # ResShift (v1), [P] Table 1
    markdown = (tmp_path / "out" / "table1.md").read_text()
    assert f"{psnr['ours']:.2f}" in markdown and f"{psnr['delta']:+.2f}" in markdown
    again = load_table(tmp_path / "out" / "table1.json")
    assert again.to_dict() == table.to_dict()


def test_perceptual_metrics_and_fid(tmp_path, paired, monkeypatch):
    calls = []

    def fake_metric(name, device="cpu"):
        calls.append(name)
        return lambda pred, target=None: pred.mean() if target is None else (pred - target).abs().mean()

    monkeypatch.setattr(metrics, "perceptual_metric", fake_metric)
    table = reproduce_table(2, load_model=_load({"rsd": "bicubic"}), locate_data=_locate({"imagenet-test": paired}),
                            methods=["RSD"])
    cells = table.row("RSD").cells
    assert all(cells[f"imagenet-test/{m}"].ours is not None for m in ("psnr", "ssim", "lpips", "clipiqa", "musiq"))
    assert cells["imagenet-test/fid"].ours is None and cells["imagenet-test/fid"].reason == FID_REASON
    assert "not selected" in table.row("ResShift (v1)").cells["imagenet-test/psnr"].reason
    assert "fid" not in calls and "lpips" in calls


def test_limit_and_dry_run(paired, no_pyiqa):
    located = _locate({"realsr": paired})
    table = reproduce_table(6, limit=1, load_model=_load({"rsd": "bicubic"}), locate_data=located)
    row = table.row("LPIPS + GAN (RSD)")
    assert row.runs["realsr"]["num_images"] == 1 and "first 1 of 2" in table.to_markdown()
    dry = reproduce_table(6, dry_run=True, load_model=_load({}), locate_data=located)
    assert dry.row("LPIPS + GAN (RSD)").cells["realsr/psnr"].reason.startswith("ready (dry run)")


def test_bad_arguments_are_named():
    for number in (7, 0, True, "1"):
        with pytest.raises(ValueError, match="number="):
            reproduce_table(number)
    with pytest.raises(ValueError, match="A100"):
        reproduce_table(4)
    with pytest.raises(ValueError, match="methods="):
        reproduce_table(1, methods=["RSD", "GAN-9000"])
    with pytest.raises(ValueError, match="limit="):
        reproduce_table(1, limit=0)
    with pytest.raises(ValueError, match="number=99"):
        paper_table(99)
    with pytest.raises(ValueError, match="not a table"):
        Table.from_dict({"rows": []})


def test_command_line(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    tables.add_table_arguments(parser)
    args = parser.parse_args(["--table", "2", "--weights-dir", str(tmp_path / "w"), "--data-root",
                              str(tmp_path / "d"), "--device", "cpu", "--json", str(tmp_path / "t2.json")])
    assert tables.run_table(args) == 0
    out = capsys.readouterr().out
    assert "Table 2" in out and "24.31" in out and "data absent" in out
    assert (tmp_path / "t2.json").is_file() and (tmp_path / "t2.md").is_file()
    with pytest.raises(SystemExit):
        parser.parse_args(["--table", "4"])
    assert set(REPRODUCIBLE) == {1, 2, 3, 5, 6, 20}


# ----------------------------------------------------------------------------- radar chart
def test_radar_normalisation():
    values = {"a": {"PSNR": 26.0, "LPIPS": 0.30}, "b": {"PSNR": 25.0, "LPIPS": 0.27},
              "c": {"PSNR": 25.5, "LPIPS": 0.30}}
    scaled = viz.radar_normalise(values, {"PSNR": True, "LPIPS": False}, floor=0.2)
    assert scaled["a"]["PSNR"] == 1 and scaled["b"]["PSNR"] == pytest.approx(0.2)
    assert scaled["c"]["PSNR"] == pytest.approx(0.6)
    assert scaled["b"]["LPIPS"] == 1 and scaled["a"]["LPIPS"] == pytest.approx(0.2)  # lower LPIPS is better
    fig = viz.radar_chart(values, {"PSNR": True, "LPIPS": False}, styles={"c": "--"})
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="axes"):
        viz.radar_normalise({"a": {"PSNR": 1.0}}, {"PSNR": True, "LPIPS": False})
