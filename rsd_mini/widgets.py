"""Teacher (T steps) vs student (1 step) vs bicubic vs ground truth, interactively.

:func:`comparison_widget` returns an ipywidgets box: a swipe slider between two chosen methods,
a zoom on a crop, a seed button that redraws the stochastic outputs (diversity), the number of
teacher steps, and the wall time of each method. :func:`comparison_figure` draws the same
comparison statically at preset values (for GitHub, PDFs and nbval).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

import torch
from matplotlib.figure import Figure
from torch import Tensor

from rsd_mini.degradations import bicubic_upsample
from rsd_mini.hub import SRModel
from rsd_mini.viz import to_numpy_image


@dataclass
class Comparison:
    """Outputs of each method on one LR image, with the wall time of each (seconds)."""

    images: dict[str, Tensor] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run_comparison(lq: Tensor, hr: Tensor | None, teacher: SRModel | None, student: SRModel | None,
                   seed: int = 0, teacher_calls: int | None = None) -> Comparison:
    """Bicubic, teacher (``teacher_calls`` of its T steps), student (1 step) and ground truth on
    one LR image (1, 3, h, w) in [−1, 1]; the same ``seed`` for both stochastic models."""
    scale = (teacher or student).scale if (teacher or student) else 4
    result = Comparison()
    start = time.perf_counter()
    result.images["bicubic"] = bicubic_upsample(lq, scale=scale)
    result.seconds["bicubic"] = time.perf_counter() - start
    for name, model, calls in (("teacher", teacher, teacher_calls), ("student", student, None)):
        if model is not None:
            start = time.perf_counter()
            result.images[name] = model.sr(lq, torch.Generator().manual_seed(seed), calls=calls)
            result.seconds[name] = time.perf_counter() - start
    if hr is not None:
        result.images["ground truth"] = hr
    return result


def swipe(left: Tensor, right: Tensor, position: float) -> Tensor:
    """``left`` on the columns before ``position`` (0..1 of the width), ``right`` after it."""
    if left.shape != right.shape:
        raise ValueError(f"left {tuple(left.shape)} and right {tuple(right.shape)}: expected equal shapes")
    if not 0 <= position <= 1:
        raise ValueError(f"position={position}: expected a fraction in [0, 1]")
    out = right.clone()
    cut = round(position * left.shape[-1])
    out[..., :cut] = left[..., :cut]
    return out


def zoom(image: Tensor, centre: tuple[float, float], size: float) -> Tensor:
    """The square crop of side ``size`` (fraction of the height) around ``centre`` (y, x fractions)."""
    height, width = image.shape[-2:]
    side = max(4, min(round(size * height), height, width))
    top = min(max(0, round(centre[0] * height - side / 2)), height - side)
    left = min(max(0, round(centre[1] * width - side / 2)), width - side)
    return image[..., top:top + side, left:left + side]


def comparison_figure(result: Comparison, centre: tuple[float, float] = (0.5, 0.5),
                      size: float = 0.35) -> Figure:
    """Static fallback: each method in full (top row) and zoomed (bottom row), with wall times."""
    names = list(result.images)
    fig = Figure(figsize=(2.6 * len(names), 5.4), layout="constrained")
    axes = fig.subplots(2, len(names), squeeze=False)
    for column, name in enumerate(names):
        image = result.images[name][0]
        seconds = result.seconds.get(name)
        title = name + (f"\n{seconds * 1000:.0f} ms" if seconds is not None else "")
        axes[0, column].imshow(to_numpy_image(image))
        axes[0, column].set_title(title, fontsize=9)
        axes[1, column].imshow(to_numpy_image(zoom(image, centre, size)), interpolation="nearest")
        for ax in axes[:, column]:
            ax.set_axis_off()
    return fig


def _png(image: Tensor, width: int = 320) -> bytes:
    fig = Figure(figsize=(width / 100, width / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(to_numpy_image(image), interpolation="nearest")
    ax.set_axis_off()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def comparison_widget(lq: Tensor, hr: Tensor | None, teacher: SRModel | None, student: SRModel | None):
    """An ipywidgets box: swipe between two methods, zoom, seed button, teacher steps, timings."""
    import ipywidgets as widgets

    state = {"seed": 0, "result": run_comparison(lq, hr, teacher, student)}
    methods = list(state["result"].images)
    left = widgets.Dropdown(options=methods, value=methods[0], description="left")
    right = widgets.Dropdown(options=methods, value=methods[min(2, len(methods) - 1)], description="right")
    position = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.01, description="swipe")
    zoom_size = widgets.FloatSlider(value=0.35, min=0.1, max=1.0, step=0.05, description="zoom")
    zoom_y = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.05, description="zoom y")
    zoom_x = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.05, description="zoom x")
    steps = widgets.IntSlider(value=teacher.nfe if teacher else 1, min=1, max=teacher.nfe if teacher else 1,
                              description="teacher steps", disabled=teacher is None)
    seed = widgets.Button(description="new seed")
    full, detail = widgets.Image(format="png"), widgets.Image(format="png")
    timings = widgets.HTML()

    def redraw(*_):
        result = state["result"]
        image = swipe(result.images[left.value], result.images[right.value], position.value)[0]
        full.value = _png(image)
        detail.value = _png(zoom(image, (zoom_y.value, zoom_x.value), zoom_size.value))
        timings.value = " · ".join(f"{k}: {v * 1000:.0f} ms" for k, v in result.seconds.items()) + \
            f" · seed {state['seed']}"

    def recompute(*_):
        state["result"] = run_comparison(lq, hr, teacher, student, state["seed"], steps.value)
        redraw()

    def new_seed(_):
        state["seed"] += 1
        recompute()

    for control in (left, right, position, zoom_size, zoom_y, zoom_x):
        control.observe(redraw, names="value")
    steps.observe(recompute, names="value")
    seed.on_click(new_seed)
    redraw()
    controls = widgets.VBox([left, right, position, zoom_size, zoom_y, zoom_x, steps, seed, timings])
    return widgets.HBox([widgets.VBox([full, detail]), controls])
