"""rsd_mini.viz: every helper returns a Figure with the expected axes and rejects bad input."""

import json

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from rsd_mini import viz
from rsd_mini.diffusion import ResShift, SampleStep


def _visible_axes(fig: Figure) -> int:
    return sum(ax.get_visible() for ax in fig.axes)


def test_to_numpy_image_maps_range_and_shapes():
    image = torch.tensor([-1.0, 0.0, 1.0, 3.0]).view(1, 2, 2).expand(3, 2, 2)
    out = viz.to_numpy_image(image)
    assert out.shape == (2, 2, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., 0], [[0.0, 0.5], [1.0, 1.0]])  # 3.0 is clipped
    assert viz.to_numpy_image(torch.zeros(1, 4, 5)).shape == (4, 5, 3)  # grey is replicated
    assert viz.to_numpy_image(torch.ones(4, 5), value_range=(0, 2))[0, 0, 0] == pytest.approx(0.5)


@pytest.mark.parametrize("bad", [torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4), np.zeros((3, 4, 4))])
def test_to_numpy_image_rejects_bad_shapes(bad):
    with pytest.raises(ValueError, match="image"):
        viz.to_numpy_image(bad)


def test_image_grid_layouts():
    batch = torch.rand(3, 3, 8, 8) * 2 - 1
    assert _visible_axes(viz.image_grid(batch)) == 3
    assert _visible_axes(viz.image_grid(list(batch), titles=["a", "b", "c"])) == 3
    fig = viz.image_grid([batch, batch[:2]], row_titles=["one", "two"], titles=["a", "b", "c"])
    assert isinstance(fig, Figure) and len(fig.axes) == 6 and _visible_axes(fig) == 5
    assert fig.axes[0].get_title() == "a" and fig.axes[0].get_ylabel() == "one"


@pytest.mark.parametrize("images, kwargs, match", [
    ([], {}, "images"),
    (torch.zeros(3, 8, 8), {}, "images"),
    ([torch.zeros(3, 8, 8), "cat"], {}, r"images\[1\]"),
    (torch.zeros(2, 3, 8, 8), {"titles": ["a", "b", "c"]}, "titles"),
    (torch.zeros(2, 3, 8, 8), {"row_titles": ["a", "b"]}, "row_titles"),
])
def test_image_grid_rejects_bad_input(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.image_grid(images, **kwargs)


def test_plot_schedule_draws_four_curves_and_overlays():
    process = ResShift.from_preset("resshift-v1")
    fig = viz.plot_schedule(process)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 4
    np.testing.assert_allclose(fig.axes[0].lines[2].get_ydata()[-1], 1.98)  # κ√η_T
    fig2 = Figure()
    ax1, ax2 = fig2.subplots(1, 2)
    assert viz.plot_schedule(ResShift.from_preset("resshift-v3"), ax=ax2, label="v3") is fig2
    assert len(ax2.lines) == 4 and len(ax1.lines) == 0
    with pytest.raises(ValueError, match="process"):
        viz.plot_schedule(torch.zeros(3))


def _steps(count: int, batch: int = 2) -> list[SampleStep]:
    return [SampleStep(t=count - 1 - k, x=torch.zeros(batch, 3, 8, 8), pred_x0=torch.ones(batch, 3, 8, 8))
            for k in range(count)]


def test_plot_trajectory_two_rows_first_and_last_step():
    fig = viz.plot_trajectory(_steps(15), max_columns=5)
    assert len(fig.axes) == 10
    titles = [ax.get_title() for ax in fig.axes[:5]]
    assert titles[0] == "t=15" and titles[-1] == "t=1"
    assert len(viz.plot_trajectory(_steps(3), max_columns=8).axes) == 6


@pytest.mark.parametrize("steps, kwargs, match", [
    ([], {}, "steps"),
    ([torch.zeros(1)], {}, "steps"),
    (_steps(4), {"max_columns": 1}, "max_columns"),
    (_steps(4), {"index": 2}, "index"),
])
def test_plot_trajectory_rejects_bad_input(steps, kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.plot_trajectory(steps, **kwargs)


def test_plot_loss_curve_from_rows_and_file(tmp_path):
    rows = [{"step": 25, "loss": 0.5}, {"step": 50, "loss": 0.2}, {"step": 50, "val_psnr": 20.0}]
    fig = viz.plot_loss_curve(rows)
    assert len(fig.axes) == 1 and list(fig.axes[0].lines[0].get_xdata()) == [25, 50]
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert len(viz.plot_loss_curve(path).axes) == 1
    assert list(viz.plot_loss_curve(str(path), key="val_psnr", log_scale=False).axes[0].lines[0].get_ydata()) == [20.0]


def test_plot_loss_curve_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="'loss'"):
        viz.plot_loss_curve([{"step": 1, "val_psnr": 3.0}])
    with pytest.raises(FileNotFoundError):
        viz.plot_loss_curve(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="log"):
        viz.plot_loss_curve([1, 2])


def test_kernel_grid_and_bar_chart():
    assert len(viz.kernel_grid([torch.ones(5, 5), -torch.eye(5)], titles=["a", "b"]).axes) == 2
    with pytest.raises(ValueError, match="kernels"):
        viz.kernel_grid([torch.ones(1, 5, 5)])
    with pytest.raises(ValueError, match="titles"):
        viz.kernel_grid([torch.ones(5, 5)], titles=["a", "b"])
    fig = viz.bar_chart({"bicubic": 22.1, "teacher": 24.3}, ylabel="PSNR (dB)")
    assert len(fig.axes) == 1 and len(fig.axes[0].patches) == 2
    with pytest.raises(ValueError, match="values"):
        viz.bar_chart({}, ylabel="x")
