"""Teacher (T steps) vs student (1 step) vs bicubic vs ground truth, interactively.

:func:`comparison_widget` returns an ipywidgets box: a swipe slider between two chosen methods,
a zoom on a crop, a seed button that redraws the stochastic outputs (diversity), the number of
teacher steps, and the wall time of each method. :func:`comparison_figure` draws the same
comparison statically at preset values (for GitHub, PDFs and nbval).

With ``upload=True`` the widget also takes the user's own image file (the classroom demo page,
:mod:`rsd_mini.demo`): either a photo used as ground truth and shrunk ×scale by bicubic (the
degradation the tiny models were trained on), or the low-resolution input itself. Every method
runs through :func:`rsd_mini.upscale.upscale`, so an image of any size is padded and tiled with
the model's default tiles (RSD_SPEC §4c); :func:`prepare_upload` caps the LR side at
``max_side`` pixels (a 15-step teacher on a CPU takes seconds per 64² LR tile).
"""

from __future__ import annotations

import io
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor

from rsd_mini.data import load_image
from rsd_mini.degradations import bicubic_downsample, bicubic_upsample
from rsd_mini.srmodel import SRModel
from rsd_mini.upscale import upscale
from rsd_mini.viz import to_numpy_image

#: Longest LR side of an uploaded image; larger ones are resized down (:func:`prepare_upload`).
DEFAULT_MAX_SIDE = 128
#: What an uploaded file is: a photo to shrink ×scale (it is then the ground truth) or the LR input.
UPLOAD_ROLES = {"ground truth (shrink it first)": "photo", "low-resolution input": "lr"}


@dataclass
class Comparison:
    """Outputs of each method on one LR image, with the wall time (seconds) and the number of
    network calls of each."""

    images: dict[str, Tensor] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def timings(self) -> str:
        """One line: each method's wall time, with its network calls (NFE)."""
        return " · ".join(f"{name} ({self.calls[name]} {'call' if self.calls[name] == 1 else 'calls'}): "
                          f"{seconds * 1000:.0f} ms" for name, seconds in self.seconds.items())


def run_comparison(lq: Tensor, hr: Tensor | None, teacher: SRModel | None, student: SRModel | None,
                   seed: int = 0, teacher_calls: int | None = None,
                   others: dict[str, SRModel] | None = None) -> Comparison:
    """Bicubic, teacher (``teacher_calls`` of its T steps), student (1 step), the ``others`` (more
    models by name, e.g. ``{"SinSR": load("tiny-sinsr")}``, each with all its steps) and ground
    truth on one LR image (1, 3, h, w) in [−1, 1] of any size (padded and tiled by
    :func:`rsd_mini.upscale.upscale`); the same ``seed`` for every stochastic model."""
    scale = next((m.scale for m in (teacher, student, *(others or {}).values()) if m is not None), 4)
    result = Comparison()
    start = time.perf_counter()
    result.images["bicubic"] = bicubic_upsample(lq, scale=scale)
    result.seconds["bicubic"], result.calls["bicubic"] = time.perf_counter() - start, 0
    models = [("teacher", teacher, teacher_calls), ("student", student, None)]
    for name, model, calls in models + [(name, model, None) for name, model in (others or {}).items()]:
        if model is not None:
            start = time.perf_counter()
            result.images[name] = upscale(model, lq, torch.Generator().manual_seed(seed), calls=calls)
            result.seconds[name] = time.perf_counter() - start
            result.calls[name] = model.nfe if calls is None else calls
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


def _png(image: Tensor, width: int = 384) -> bytes:
    """PNG of one (3, H, W) image in [−1, 1], ``width`` pixels wide with its aspect kept: pixels
    enlarged as blocks (nearest) so the zoom shows them, or averaged (Lanczos) when shrunk."""
    picture = Image.fromarray((to_numpy_image(image) * 255).round().astype("uint8"))
    size = (width, max(1, round(width * picture.height / picture.width)))
    resample = Image.Resampling.NEAREST if width >= picture.width else Image.Resampling.LANCZOS
    buffer = io.BytesIO()
    picture.resize(size, resample).save(buffer, format="png")
    return buffer.getvalue()


def read_upload(content: bytes, name: str = "upload.png") -> Tensor:
    """An uploaded image file's bytes (PNG, JPEG, ...) as (1, 3, H, W) in [0, 1], read the way
    :func:`rsd_mini.data.load_image` reads files (EXIF orientation, grey and alpha handled)."""
    with tempfile.TemporaryDirectory(prefix="rsd-mini-upload-") as folder:
        path = Path(folder) / ("upload" + Path(name).suffix.lower())
        path.write_bytes(bytes(content))
        return load_image(path)[None]


def _shrink_to(image: Tensor, max_side: int) -> Tensor:
    """Antialiased bicubic resize of (1, 3, H, W) in [0, 1] to a longer side of at most ``max_side``."""
    height, width = image.shape[-2:]
    factor = max_side / max(height, width)
    if factor >= 1:
        return image
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    return F.interpolate(image, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def prepare_upload(image: Tensor, role: str, scale: int = 4,
                   max_side: int = DEFAULT_MAX_SIDE) -> tuple[Tensor, Tensor | None, str]:
    """(lq, hr or None, a one-line note) in [−1, 1] from an uploaded image (1, 3, H, W) in [0, 1].

    ``role="photo"``: the image is the ground truth; it is resized so that its LR version has a
    longer side of at most ``max_side``, cropped at the bottom/right to a multiple of ``scale``
    and shrunk ×``scale`` by antialiased bicubic (:func:`rsd_mini.degradations.bicubic_downsample`,
    the tiny models' training degradation). ``role="lr"``: the image is the LR input itself,
    resized to at most ``max_side``; there is no ground truth.
    """
    if role not in UPLOAD_ROLES.values():
        raise ValueError(f"role={role!r}: expected one of {sorted(UPLOAD_ROLES.values())}")
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 1:
        raise ValueError(f"max_side={max_side!r}: expected a positive number of LR pixels")
    height, width = image.shape[-2:]
    hr = None
    if role == "lr":
        lq = _shrink_to(image, max_side)
    else:
        hr = _shrink_to(image, max_side * scale)
        if min(hr.shape[-2:]) < scale:
            raise ValueError(f"image of {width}×{height} pixels: expected both sides ≥ scale={scale} "
                             f"to shrink it ×{scale}")
        hr = hr[..., :hr.shape[-2] // scale * scale, :hr.shape[-1] // scale * scale]
        lq = bicubic_downsample(hr, scale)
    note = f"{width}×{height} → LR input {lq.shape[-1]}×{lq.shape[-2]}"
    if max(height, width) > max_side * (scale if role == "photo" else 1):
        note += f" (resized: LR side capped at {max_side} pixels)"
    return lq * 2 - 1, None if hr is None else hr * 2 - 1, note


def _set_choices(control, names: list[str], fallback: str) -> None:
    """Give a Dropdown the options ``names``, keeping its value when it is still one of them."""
    value = control.value if control.value in names else fallback
    if list(control.options) != names:
        control.options = names
    control.value = value


def comparison_widget(lq: Tensor, hr: Tensor | None, teacher: SRModel | None, student: SRModel | None,
                      upload: bool = False, max_side: int = DEFAULT_MAX_SIDE, width: int = 384,
                      others: dict[str, SRModel] | None = None):
    """An ipywidgets box: swipe between two methods, zoom, seed button, teacher steps, timings;
    ``others`` adds more models by name to the methods (:func:`run_comparison`); with
    ``upload=True`` also a file upload of the user's own image (see :func:`prepare_upload`).

    Each part carries a CSS class (``rsd-full``, ``rsd-detail``, ``rsd-swipe``, ``rsd-steps``,
    ``rsd-new-seed``, ``rsd-timings``, ``rsd-upload``, ``rsd-status``) for browser tests.
    """
    import html

    import ipywidgets as widgets

    scale = next((m.scale for m in (teacher, student, *(others or {}).values()) if m is not None), 4)
    state = {"seed": 0, "lq": lq, "hr": hr, "note": "", "upload": None, "hold": False,
             "result": run_comparison(lq, hr, teacher, student, others=others)}
    methods = list(state["result"].images)
    left = widgets.Dropdown(options=methods, value=methods[0], description="left")
    right = widgets.Dropdown(options=methods, value=methods[min(2, len(methods) - 1)], description="right")
    position = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.01, description="swipe")
    zoom_size = widgets.FloatSlider(value=0.35, min=0.1, max=1.0, step=0.05, description="zoom")
    zoom_y = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.05, description="zoom y")
    zoom_x = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.05, description="zoom x")
    steps = widgets.IntSlider(value=teacher.nfe if teacher else 1, min=1, max=teacher.nfe if teacher else 1,
                              description="teacher steps", disabled=teacher is None,
                              style={"description_width": "initial"})
    seed = widgets.Button(description="new seed", icon="refresh")
    uploader = widgets.FileUpload(accept="image/*", multiple=False, description="upload an image")
    role = widgets.Dropdown(options=list(UPLOAD_ROLES.items()), value="photo", description="it is the",
                            style={"description_width": "initial"})
    full, detail = widgets.Image(format="png"), widgets.Image(format="png")
    caption, timings, status = widgets.HTML(), widgets.HTML(), widgets.HTML()
    for part, name in ((full, "full"), (detail, "detail"), (position, "swipe"), (steps, "steps"),
                       (seed, "new-seed"), (timings, "timings"), (uploader, "upload"), (status, "status")):
        part.add_class(f"rsd-{name}")

    def redraw(*_):
        if state["hold"]:
            return
        result = state["result"]
        image = swipe(result.images[left.value], result.images[right.value], position.value)[0]
        full.value = _png(image, width)
        detail.value = _png(zoom(image, (zoom_y.value, zoom_x.value), zoom_size.value), width)
        caption.value = (f"left of {position.value:.0%}: <b>{left.value}</b> · right: <b>{right.value}</b> · "
                         f"{image.shape[-1]}×{image.shape[-2]} pixels; right image: the zoomed square")
        timings.value = f"{result.timings()} · seed {state['seed']}"

    def recompute(*_):
        status.value = "computing …"
        state["result"] = run_comparison(state["lq"], state["hr"], teacher, student, state["seed"], steps.value,
                                         others)
        names = list(state["result"].images)
        state["hold"] = True
        _set_choices(left, names, names[0])
        _set_choices(right, names, names[min(2, len(names) - 1)])
        state["hold"] = False
        redraw()
        status.value = state["note"]

    def new_seed(_):
        state["seed"] += 1
        recompute()

    def use_upload(*_):
        if state["upload"] is None:
            return
        content, name = state["upload"]
        try:
            state["lq"], state["hr"], note = prepare_upload(read_upload(content, name), role.value, scale, max_side)
        except ValueError as error:
            status.value = f"⚠ {html.escape(name)}: {html.escape(str(error))}"
            return
        state["note"] = f"{html.escape(name)}: {note}"
        recompute()

    def take_upload(change):
        if change["new"]:
            state["upload"] = (bytes(change["new"][-1]["content"]), change["new"][-1]["name"])
            use_upload()

    for control in (left, right, position, zoom_size, zoom_y, zoom_x):
        control.observe(redraw, names="value")
    steps.observe(recompute, names="value")
    seed.on_click(new_seed)
    uploader.observe(take_upload, names="value")
    role.observe(use_upload, names="value")
    redraw()
    view = widgets.VBox([left, right, position, zoom_size, zoom_y, zoom_x])
    model = widgets.VBox([steps, seed] + ([uploader, role] if upload else []))
    return widgets.VBox([widgets.HBox([full, detail]), caption, widgets.HBox([view, model]), timings, status])
