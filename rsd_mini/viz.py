"""Figures for the notebooks and the figure scripts: schedules, image grids, trajectories, losses.

Every function returns a :class:`matplotlib.figure.Figure` built without ``pyplot``, so library
calls never pile up open figures or pop up windows; a notebook shows the returned figure once
(it is the cell's value) and a script calls ``fig.savefig``. Images are tensors in [−1, 1]
(the network's range) unless ``value_range`` says otherwise.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

__all__ = ["to_numpy_image", "image_grid", "plot_schedule", "plot_trajectory", "plot_loss_curve",
           "kernel_grid", "bar_chart"]


def to_numpy_image(image: Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """(3, H, W), (1, H, W) or (H, W) tensor in ``value_range`` → (H, W, 3) float array in [0, 1].

    Values outside the range are clipped (x_t carries noise of std up to 1.98).
    """
    if not isinstance(image, Tensor) or not (image.ndim == 2 or (image.ndim == 3 and image.shape[0] in (1, 3))):
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"image: expected a tensor of shape (3, H, W), (1, H, W) or (H, W), got {shape}")
    low, high = value_range
    if not high > low:
        raise ValueError(f"value_range={value_range!r}: expected (low, high) with high > low")
    unit = ((image.detach().float().cpu() - low) / (high - low)).clamp(0, 1)
    unit = unit.expand(3, *unit.shape[-2:]) if unit.ndim == 2 or unit.shape[0] == 1 else unit
    return unit.permute(1, 2, 0).numpy()


def _rows(images) -> list[list[Tensor]]:
    """Normalise ``images`` to rows of (C, H, W) tensors.

    (B, C, H, W) → one row; a list of (C, H, W) → one row; a list of (B, C, H, W) tensors or of
    lists of (C, H, W) → one row each.
    """
    if isinstance(images, Tensor):
        if images.ndim != 4:
            raise ValueError(f"images: expected a (B, C, H, W) tensor or a list, got shape {tuple(images.shape)}")
        return [list(images)]
    if not isinstance(images, (list, tuple)) or not images:
        raise ValueError(f"images: expected a non-empty tensor or list, got {images!r:.80}")
    if isinstance(images[0], Tensor) and images[0].ndim == 3:  # a single row of images
        for index, image in enumerate(images):
            if not (isinstance(image, Tensor) and image.ndim == 3):
                raise ValueError(f"images[{index}]: expected a (C, H, W) tensor like images[0], "
                                 f"got {getattr(image, 'shape', type(image).__name__)}")
        return [list(images)]
    rows = []
    for index, row in enumerate(images):
        if isinstance(row, Tensor) and row.ndim == 4:
            rows.append(list(row))
        elif isinstance(row, (list, tuple)) and row and all(isinstance(i, Tensor) and i.ndim == 3 for i in row):
            rows.append(list(row))
        else:
            raise ValueError(f"images[{index}]: expected a (C, H, W) tensor, a (B, C, H, W) tensor or a "
                             f"list of (C, H, W) tensors, got {getattr(row, 'shape', type(row).__name__)}")
    return rows


def image_grid(images, titles: Sequence[str] | None = None, row_titles: Sequence[str] | None = None,
               value_range: tuple[float, float] = (-1.0, 1.0), size: float = 2.0,
               suptitle: str | None = None) -> Figure:
    """A grid of images, one axes per image (empty cells of short rows are hidden).

    ``images``: a (B, 3, H, W) tensor or a list of (3, H, W) tensors (one row), or a list of such
    rows. ``titles`` label the columns (or every image, row by row, when there are that many);
    ``row_titles`` label the rows on the left.
    """
    rows = _rows(images)
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    n_images = sum(len(r) for r in rows)
    if titles is not None and len(titles) not in (n_cols, n_images):
        raise ValueError(f"titles has {len(titles)} entries: expected {n_cols} (columns) or {n_images} (images)")
    if row_titles is not None and len(row_titles) != n_rows:
        raise ValueError(f"row_titles has {len(row_titles)} entries: expected {n_rows} (rows)")
    fig = Figure(figsize=(size * n_cols, size * n_rows + (0.4 if suptitle else 0)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    counter = 0
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            if c >= len(row):
                ax.set_visible(False)
                continue
            ax.imshow(to_numpy_image(row[c], value_range), interpolation="nearest")
            if titles is not None and (len(titles) == n_images or r == 0):
                ax.set_title(titles[counter if len(titles) == n_images else c], fontsize=9)
            counter += 1
        if row_titles is not None:
            axes[r, 0].set_ylabel(row_titles[r], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_schedule(process, ax=None, label: str | None = None) -> Figure:
    """√η_t, η_t, κ√η_t (noise std) and α_t = η_t − η_{t−1} against the paper's t = 1..T.

    ``process`` is a :class:`rsd_mini.diffusion.ResShift`. Draws on ``ax`` if given (e.g.
    to place schedules side by side), else on a new figure; ``label`` replaces the default title.
    Returns the figure.
    """
    needed = ("sqrt_etas", "etas", "alphas", "kappa", "steps")
    missing = [name for name in needed if not hasattr(process, name)]
    if missing:
        raise ValueError(f"process: expected a ResShift (attributes {needed}), {type(process).__name__} "
                         f"lacks {missing}")
    if ax is None:
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.subplots()
    t = np.arange(1, process.steps + 1)
    curves = {r"$\sqrt{\eta_t}$": process.sqrt_etas, r"$\eta_t$": process.etas,
              r"$\kappa\sqrt{\eta_t}$ (noise std)": process.kappa * process.sqrt_etas,
              r"$\alpha_t = \eta_t - \eta_{t-1}$": process.alphas}
    for (name, values), marker in zip(curves.items(), "os^v"):
        ax.plot(t, np.asarray(values, dtype=float), marker=marker, markersize=3, label=name)
    ax.set_xlabel("t"), ax.set_ylabel("value")
    ax.set_title(label or f"ResShift schedule, T={process.steps}, κ={process.kappa:g}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax.figure


def plot_trajectory(steps: Sequence, max_columns: int = 8, index: int = 0,
                    value_range: tuple[float, float] = (-1.0, 1.0)) -> Figure:
    """Sampler steps (``SampleStep``: ``.t`` index i, ``.x`` = x_{t−1}, ``.pred_x0``) as two rows:
    the state after each step and the network's x̂₀ at that step, for batch item ``index``.

    At most ``max_columns`` steps are shown, evenly spaced, always with the first and the last.
    """
    steps = list(steps)
    if not steps or not all(hasattr(s, name) for s in steps for name in ("t", "x", "pred_x0")):
        raise ValueError("steps: expected a non-empty list of SampleStep (with .t, .x, .pred_x0)")
    if max_columns < 2:
        raise ValueError(f"max_columns={max_columns!r}: expected >= 2")
    if not -steps[0].x.shape[0] <= index < steps[0].x.shape[0]:
        raise ValueError(f"index={index}: expected a batch index below {steps[0].x.shape[0]}")
    chosen = sorted({round(k) for k in np.linspace(0, len(steps) - 1, min(max_columns, len(steps)))})
    shown = [steps[k] for k in chosen]
    return image_grid([[s.x[index] for s in shown], [s.pred_x0[index] for s in shown]],
                      titles=[f"t={int(s.t) + 1}" for s in shown],
                      row_titles=[r"state $x_{t-1}$", r"$\hat{x}_0 = f_\theta(x_t)$"], value_range=value_range)


def _read_log(log: str | os.PathLike | Iterable[dict]) -> list[dict]:
    if isinstance(log, (str, os.PathLike)):
        path = Path(log)
        if not path.is_file():
            raise FileNotFoundError(f"log file not found: {path}")
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = list(log)
    if not all(isinstance(row, dict) for row in rows):
        raise ValueError("log: expected a path to a JSON-lines file or a list of dicts")
    return rows


def plot_loss_curve(log: str | os.PathLike | Iterable[dict], key: str = "loss", ax=None,
                    log_scale: bool = True) -> Figure:
    """``key`` against ``step`` from the trainer's ``log.jsonl`` (a path) or its rows (dicts).

    Rows without ``key`` (e.g. validation rows) are skipped; at least one must have it.
    """
    rows = [row for row in _read_log(log) if key in row and "step" in row]
    if not rows:
        raise ValueError(f"log: no row has both 'step' and {key!r}")
    if ax is None:
        fig = Figure(figsize=(6, 3.5), layout="constrained")
        ax = fig.subplots()
    ax.plot([row["step"] for row in rows], [row[key] for row in rows], marker="o", markersize=3)
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("update"), ax.set_ylabel(key)
    ax.grid(alpha=0.3, which="both")
    return ax.figure


def plot_training_curves(log: str | os.PathLike | Iterable[dict], keys: Sequence[str]) -> Figure:
    """One panel per logged ``key`` (e.g. the student loss, the fake loss and the SiD
    normaliser of a distillation run); a log scale where all values are positive."""
    rows = list(_read_log(log))
    fig = Figure(figsize=(4 * len(keys), 3.2), layout="constrained")
    for ax, key in zip(fig.subplots(1, len(keys), squeeze=False)[0], keys):
        positive = all(row[key] > 0 for row in rows if key in row)
        plot_loss_curve(rows, key=key, ax=ax, log_scale=positive)
    return fig


def kernel_grid(kernels: Sequence[Tensor], titles: Sequence[str] | None = None, size: float = 1.8) -> Figure:
    """Blur kernels (2-D tensors) side by side, each scaled to its own maximum |value|.

    A diverging colour map shows the negative lobes of sinc kernels.
    """
    kernels = list(kernels)
    if not kernels or not all(isinstance(k, Tensor) and k.ndim == 2 for k in kernels):
        raise ValueError("kernels: expected a non-empty list of 2-D tensors")
    if titles is not None and len(titles) != len(kernels):
        raise ValueError(f"titles has {len(titles)} entries: expected {len(kernels)}")
    fig = Figure(figsize=(size * len(kernels), size + 0.3), layout="constrained")
    for i, (ax, kernel) in enumerate(zip(fig.subplots(1, len(kernels), squeeze=False)[0], kernels)):
        scale = float(kernel.abs().max()) or 1.0
        ax.imshow(kernel.detach().cpu().float().numpy(), cmap="RdBu_r", vmin=-scale, vmax=scale)
        ax.set_xticks([]), ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    return fig


def bar_chart(values: dict[str, float], ylabel: str, ax=None, fmt: str = "{:.2f}", zero: bool = True,
              reference: tuple[str, float] | None = None, title: str | None = None) -> Figure:
    """One labelled bar per entry of ``values`` (e.g. PSNR per method), each annotated.

    ``zero=False`` starts the axis just below the smallest value instead of at 0, so that
    differences of a fraction of a dB between 25-dB bars stay visible (the axis then says where it
    starts). ``reference``: a (label, value) drawn as a dashed horizontal line (e.g. the ground
    truth's detail). Long names are wrapped onto several lines so neighbouring labels never overlap.
    """
    if not values:
        raise ValueError("values: expected a non-empty dict of name -> number")
    if ax is None:
        fig = Figure(figsize=(min(11.0, 1.1 * len(values) + 1.8), 3.4), layout="constrained")
        ax = fig.subplots()
    numbers = [float(v) for v in values.values()]
    names = [textwrap.fill(str(name), 12) for name in values]
    bars = ax.bar(names, numbers, color=[f"C{i}" for i in range(len(values))])
    ax.bar_label(bars, labels=[fmt.format(v) for v in numbers], fontsize=8)
    if reference is not None:
        ax.axhline(float(reference[1]), color="k", linestyle="--", linewidth=1, label=reference[0])
        ax.legend(fontsize=8, loc="lower right")
    if not zero:
        shown = numbers + ([float(reference[1])] if reference is not None else [])
        low, high = min(shown), max(shown)
        margin = 0.15 * (high - low) or 0.5
        ax.set_ylim(low - 2 * margin, high + margin)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    return ax.figure


def radar_normalise(values: dict[str, dict[str, float]], higher_is_better: dict[str, bool],
                    floor: float = 0.2) -> dict[str, dict[str, float]]:
    """Scale each axis of ``values`` (method → axis → number) to [``floor``, 1] across methods,
    the best method at 1 and the worst at ``floor`` (inverted where ``higher_is_better`` is
    False, e.g. LPIPS), as in the radar chart of RSD Fig. 1 (right). An axis on which all
    methods tie puts every method at 1."""
    if not values or not all(isinstance(row, dict) and row for row in values.values()):
        raise ValueError("values: expected a non-empty dict of method -> {axis: number}")
    axes = list(higher_is_better)
    for method, row in values.items():
        if sorted(row) != sorted(axes):
            raise ValueError(f"values[{method!r}] has axes {sorted(row)}: expected {sorted(axes)} "
                             "(the keys of higher_is_better)")
    if not 0 <= floor < 1:
        raise ValueError(f"floor={floor!r}: expected a number in [0, 1)")
    scaled: dict[str, dict[str, float]] = {method: {} for method in values}
    for axis in axes:
        numbers = [float(row[axis]) for row in values.values()]
        low, high = min(numbers), max(numbers)
        for method, row in values.items():
            share = 1.0 if high == low else (float(row[axis]) - low) / (high - low)
            share = share if higher_is_better[axis] else (1.0 if high == low else 1.0 - share)
            scaled[method][axis] = floor + (1 - floor) * share
    return scaled


def radar_chart(values: dict[str, dict[str, float]], higher_is_better: dict[str, bool], title: str | None = None,
                floor: float = 0.2, size: float = 4.5, styles: dict[str, str] | None = None,
                labels: dict[str, str] | None = None) -> Figure:
    """A radar chart of ``values`` (method → axis → number), each axis normalised across the
    methods by :func:`radar_normalise` (outer is better; "↓" marks inverted axes) and labelled
    (``labels``, default the axis names) with its raw range. ``styles``: a line style per
    method (e.g. ``"--"`` for our numbers)."""
    scaled = radar_normalise(values, higher_is_better, floor)
    axes = list(higher_is_better)
    angles = np.linspace(0, 2 * np.pi, len(axes), endpoint=False)
    fig = Figure(figsize=(size + 2.2, size), layout="constrained")
    ax = fig.add_subplot(projection="polar")
    for index, (method, row) in enumerate(scaled.items()):
        radii = [row[axis] for axis in axes]
        ax.plot(np.append(angles, angles[0]), radii + radii[:1], (styles or {}).get(method, "-"),
                color=f"C{index}", marker="o", markersize=3, label=method)
        ax.fill(np.append(angles, angles[0]), radii + radii[:1], color=f"C{index}", alpha=0.08)
    ticks = []
    for axis in axes:
        numbers = [float(row[axis]) for row in values.values()]
        name = (labels or {}).get(axis, axis)
        ticks.append(f"{name}{'' if higher_is_better[axis] else ' ↓'}\n[{min(numbers):.3g}, {max(numbers):.3g}]")
    ax.set_xticks(angles, ticks, fontsize=8)
    ax.tick_params(axis="x", pad=10)
    ax.set_ylim(0, 1.05), ax.set_yticklabels([])
    ax.legend(loc="upper left", bbox_to_anchor=(1.08, 1.0), fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig
