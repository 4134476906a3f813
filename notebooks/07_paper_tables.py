# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 — The paper's tables, and how to reproduce them
#
# **Paper claim.** With one network call, RSD matches or beats its 15-step ResShift teacher and
# the one-step SinSR on perceptual metrics (LPIPS, CLIPIQA, MUSIQ) at a small cost in PSNR, on
# full-size RealSR and RealSet65 (RSD Table 1), ImageNet-Test (Table 2) and 512² crops of
# DIV2K/DRealSR/RealSR (Table 3); Fig. 1 summarises it as a radar chart and a visual grid
# (RSD_SPEC §5).
#
# **Learning goals.**
# 1. Read Tables 1–3 as data (`rsd_mini.fullscale.tables`): which rows can be rerun with released weights,
#    which metrics need pyiqa, and why FID is not a per-image metric.
# 2. Reproduce a table: `reproduce_table` evaluates every row whose weights and data are present
#    with the paper protocol and reports paper | ours | Δ, saying why each empty cell is empty.
# 3. Draw Fig. 1: the radar chart (normalised per axis, LPIPS inverted) and the visual grid
#    LR | bicubic | ResShift-15 | SinSR-1 | RSD-1.
#
# **Prerequisites.** Notebook 06 (metrics, the shipped tiny models).
#
# **Runtime.** Fast mode (default): under a minute on 2 CPU cores — the paper's numbers, a
# miniature run of the reproduction code with the shipped tiny models, the radar chart and a
# tiny visual grid. Full mode needs the released weights, the test sets and one GPU: the cells
# marked `# NBVAL_SKIP` then fill the tables (about an hour for Tables 1–2 on one A100).
#
# ## What full scale needs
#
# ```bash
# # weights (≈ 2 GB; ResShift v1, SinSR, RSD EMA-2800 and the VQ-f4 autoencoder)
# python -m rsd_mini weights download resshift-v1 sinsr-v2 rsd vq-f4
# # test sets: put them under $RSD_MINI_DATA (default ~/.cache/rsd-mini/data), then check
# python -m rsd_mini data check realsr realset65 imagenet-test div2k-val-512 drealsr-512 realsr-512
# # one table on a GPU: prints paper | ours | Δ, writes runs/tables/table1.{json,md}
# python -m rsd_mini reproduce --table 1 --device cuda --json runs/tables
# python -m rsd_mini reproduce --table 2 --device cuda --json runs/tables --limit 300   # a subset first
# ```
# The perceptual columns need `pip install pyiqa` and one run with network access (pyiqa caches
# its weights). FID is computed over a whole set, not per image: those columns stay "n/a".

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import os
import tempfile
from pathlib import Path

import torch
from IPython.display import Markdown, display

import rsd_mini
from rsd_mini import viz
from rsd_mini.fullscale import tables
from rsd_mini.config import load_config
from rsd_mini.data import load_image, mini_photo_paths, save_image
from rsd_mini.degradations import bicubic_downsample, bicubic_upsample
from rsd_mini.hub import load
from rsd_mini.fullscale.prepare import TestSet, data_root, locate_testset
from rsd_mini.reproduce import validation_batch
from rsd_mini.upscale import upscale

FAST = os.environ.get("RSD_MINI_FULL", "0") != "1"
torch.set_num_threads(min(2, torch.get_num_threads()))
SEED = tables.PAPER_SEED
ROOT = Path(rsd_mini.__file__).resolve().parents[1]  # the repository (editable install)
# Where `python -m rsd_mini reproduce --json runs/tables`, run from the repository root, writes;
# a relative RSD_MINI_TABLES is read from the repository root too, not from notebooks/.
RESULTS = ROOT / os.environ.get("RSD_MINI_TABLES", "runs/tables")
GPU = torch.cuda.is_available()
print(f"rsd-mini {rsd_mini.__version__} | mode: {'fast' if FAST else 'full'} | GPU: {GPU} | results: {RESULTS}")

# %% [markdown]
# ## 1. The paper's tables as data
#
# Each table is a list of rows (method, NFE, the name of its released weights in
# `rsd_mini.fullscale.weights` or `None`) and columns (data set, metric). Metric names are those of
# `evaluate_folder` (`psnr`, `ssim`: Y channel, full image) and of pyiqa (`lpips`, `clipiqa`,
# `musiq`, `dists`, `niqe`, `maniqa-pipal`), as in the official `evaluate.py`.

# %%
for number in (1, 2, 3):
    display(Markdown(tables.paper_markdown(number)))

# %% [markdown]
# Which rows can be rerun at all? Only methods whose weights were released and that rsd-mini can
# load: ResShift v1 (the teacher), SinSR and RSD. The distill-only and VSD variants were never
# released, and CTMSR, OSEDiff, SUPIR, BSRGAN and Real-ESRGAN are other projects' models.

# %%
for number in (1, 2, 3):
    paper = tables.paper_table(number)
    runnable = [f"{row.method} ({row.model})" for row in paper.rows if row.model]
    print(f"Table {number}: {len(paper.rows)} rows, {len(paper.columns)} columns; runnable: {', '.join(runnable)}")
assert {row.model for row in tables.paper_table(1).rows} - {None} == {"resshift-v1", "sinsr-v2", "rsd"}

# %% [markdown]
# The same numbers appear in several tables (the "both losses" row of the Table 6 ablation *is*
# the released RSD of Table 1), which is a cheap check of the transcription. And Table 4 gives the
# claim behind "one step": the wall-time ratio of the teacher and the student on an A100.

# %%
t1, t4, t6 = (tables.paper_table(n) for n in (1, 4, 6))
for metric in ("psnr", "clipiqa", "musiq"):
    column = tables.Column("realsr", metric)
    assert t6.value("LPIPS + GAN (RSD)", column) == t1.value("RSD", column)
seconds = tables.Column("a100-64", "seconds")
speedup = t4.value("ResShift (v1)", seconds) / t4.value("RSD", seconds)
print(f"RSD is {speedup:.1f}x faster than the 15-step teacher per 64² LR image (Table 4)")
assert 10 < speedup < 11

# %% [markdown]
# ## 2. What is present on this machine
#
# The weights of the runnable rows (in `$RSD_MINI_WEIGHTS`, default `~/.cache/rsd-mini/weights`)
# and the test sets (in `$RSD_MINI_DATA`, default `~/.cache/rsd-mini/data`): what is missing and
# where to put it. Then a dry run of `reproduce_table`, which loads nothing, counts the cells that
# could be computed here; its table holds the reason for every other cell.

# %%
needed = sorted({row.model for n in (1, 2, 3) for row in tables.paper_table(n).rows if row.model})
for name in needed:
    print(f"weights {name:12s}: {tables.missing_weights(name) or 'present'}")
for dataset in sorted({d for n in (1, 2, 3) for d in tables.paper_table(n).datasets}):
    print(f"data    {dataset:14s}: {'present' if locate_testset(dataset) else 'absent'} "
          f"(expected in {data_root() / dataset})")
status = {number: tables.reproduce_table(number, dry_run=True) for number in (1, 2, 3)}
ready = {number: sum((cell.reason or "").startswith("ready") for row in table.rows for cell in row.cells.values())
         for number, table in status.items()}
print("cells ready to compute (weights and data present):", ready)
assert all(cell.ours is None for table in status.values() for row in table.rows for cell in row.cells.values())

# %% [markdown]
# ## 3. The reproduction code on a miniature
#
# To see every step of `reproduce_table` without the 2 GB of weights, inject stand-ins: the shipped
# tiny teacher plays "resshift-v1" and the tiny student plays "rsd" (SinSR has no tiny stand-in,
# so its cells stay empty with the reason), and held-out 16² → 64² crops of the mini validation
# photos (the first 4 in fast mode, which keeps the 15-call teacher to a few seconds; all 32 in
# full mode) play RealSR (with ground truth) and RealSet65 (LR only). The protocol is the
# paper's: seed 12345, tiles of 512 LR pixels with overlap 64, Y-channel PSNR/SSIM on the
# 8-bit outputs. **These numbers are not comparable with the paper's** (a 3 M-parameter
# pixel-space model on bicubic ×4 crops); the Δ column shows the code path, not a result. Only
# the rows of the three methods asked for are shown: every other row of Table 1 is empty here,
# for the reasons section 2 lists.

# %%
teacher, student = load("tiny-teacher"), load("tiny-student")
val = validation_batch(load_config("tiny"), limit=4 if FAST else 32)
stand_in_models = {"resshift-v1": teacher, "rsd": student}
STAND_IN_METHODS = ["ResShift (v1)", "SinSR", "RSD"]


def load_stand_in(name, weights_dir=None, device="cpu"):
    if name not in stand_in_models:
        raise FileNotFoundError(f"weights absent: no tiny stand-in for {name}")
    return stand_in_models[name]


with tempfile.TemporaryDirectory(prefix="rsd-mini-07-") as folder:  # deleted when the table is made
    mini = Path(folder)
    for index in range(len(val["lq"])):
        save_image(val["lq"][index], mini / "lq" / f"{index:03d}.png", value_range=(-1.0, 1.0))
        save_image(val["hr"][index], mini / "gt" / f"{index:03d}.png", value_range=(-1.0, 1.0))
    stand_in_data = {"realsr": TestSet("realsr", mini / "lq", mini / "gt", len(val["lq"])),
                     "realset65": TestSet("realset65", mini / "lq", None, len(val["lq"]))}
    miniature = tables.reproduce_table(1, load_model=load_stand_in, locate_data=stand_in_data.get,
                                       perceptual=False, methods=STAND_IN_METHODS)
assert not mini.exists()


def stand_in_rows(table, methods, dataset="realsr"):
    """Markdown of the rows of ``methods`` only (the other rows are all empty here), with the
    reason for every empty cell."""
    columns = [c for c in table.columns if c.dataset == dataset]
    lines = ["| method (stand-in) | NFE | " + " | ".join(f"{tables.METRICS[c.metric][0]} paper / ours / Δ"
                                                      for c in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    reasons = []
    for row in (r for r in table.rows if r.method in methods):
        cells = [row.cells[c.key] for c in columns]
        lines.append(f"| {row.method} | {row.nfe} | " + " | ".join(
            f"{cell.paper:.4g} / " + ("–" if cell.ours is None else f"{cell.ours:.4g} / {cell.delta:+.3g}")
            for cell in cells) + " |")
        reasons += sorted({f"* {row.method}: {cell.reason}" for cell in cells if cell.ours is None})
    return "\n".join(lines + [""] + reasons)


display(Markdown(stand_in_rows(miniature, STAND_IN_METHODS)))

# %% [markdown]
# Every filled cell holds Δ = ours − paper; every empty one says why. The assert re-derives Δ
# from the paper's numbers, independently of the `Cell` class.

# %%
filled = 0
for row in miniature.rows:
    for column in miniature.columns:
        cell = row.cells[column.key]
        assert cell.paper == tables.paper_table(1).value(row.method, column)
        if cell.ours is None:
            assert cell.reason, (row.method, column.key)
        else:
            filled += 1
            assert abs(cell.delta - (cell.ours - cell.paper)) < 1e-12
print(f"{filled} cells filled (PSNR and SSIM of the two stand-ins); the perceptual ones are off here")
assert filled == 4

# %% [markdown]
# ## 4. Fig. 1 (right): the radar chart
#
# Five RealSR axes: PSNR, SSIM, LPIPS, CLIPIQA, MUSIQ. Each axis is normalised across the
# methods shown: the best method sits at 1, the worst at a floor of 0.2, the others linearly in
# between; LPIPS (lower is better) is inverted. First by hand, then against `rsd_mini.viz`.

# %%
AXES = {"psnr": True, "ssim": True, "lpips": False, "clipiqa": True, "musiq": True}
shown = ("ResShift (v1)", "SinSR", "RSD")
radar = {m: {a: t1.value(m, tables.Column("realsr", a)) for a in AXES} for m in shown}


def normalise_by_hand(values, higher, floor=0.2):
    out = {m: {} for m in values}
    for axis, up in higher.items():
        lo, hi = min(v[axis] for v in values.values()), max(v[axis] for v in values.values())
        for m, v in values.items():
            share = (v[axis] - lo) / (hi - lo) if hi > lo else 1.0
            out[m][axis] = floor + (1 - floor) * (share if up or hi == lo else 1 - share)
    return out


library = viz.radar_normalise(radar, AXES)
for method in shown:
    for axis in AXES:
        assert abs(library[method][axis] - normalise_by_hand(radar, AXES)[method][axis]) < 1e-12
        assert 0.2 - 1e-12 <= library[method][axis] <= 1 + 1e-12
assert library["RSD"]["lpips"] == 1.0  # RSD has the lowest LPIPS of the three
print({m: {a: round(v, 2) for a, v in row.items()} for m, row in library.items()})

# %% [markdown]
# Our numbers join the chart when a reproduction has written `runs/tables/table1.json` (any row
# with all five RealSR cells filled is drawn dashed).

# %%
styles = {}
ours_file = RESULTS / "table1.json"
if ours_file.is_file():
    ours_table = tables.load_table(ours_file)
    for row in ours_table.rows:
        cells = {a: row.cells[f"realsr/{a}"].ours for a in AXES}
        if all(v is not None for v in cells.values()):
            radar[f"{row.method} (ours)"] = cells
            styles[f"{row.method} (ours)"] = "--"
    print(f"ours from {ours_file}: {[name for name in radar if name.endswith('(ours)')] or 'no complete row'}")
else:
    print(f"no {ours_file} yet: paper numbers only")
LABELS = {axis: tables.METRICS[axis][0] for axis in AXES}
viz.radar_chart(radar, AXES, title="RealSR, [P] Table 1 (normalised per axis)", styles=styles, labels=LABELS)

# %% [markdown]
# ## 5. Try it: choose the methods on the chart
#
# The normalisation depends on which methods are shown (each axis spans the best and the worst of
# them). Pick any rows of Table 1; the static figure above is the preset (ResShift, SinSR, RSD).

# %%
import ipywidgets


def radar_of(methods):
    methods = list(methods) or list(shown)
    values = {m: {a: t1.value(m, tables.Column("realsr", a)) for a in AXES} for m in methods}
    display(viz.radar_chart(values, AXES, title="RealSR, [P] Table 1", labels=LABELS))


picker = ipywidgets.SelectMultiple(options=[row.method for row in t1.rows], value=shown, rows=6,
                                   description="methods")
ipywidgets.interactive(radar_of, methods=picker)

# %% [markdown]
# ## 6. Fig. 1 (left) / Fig. 3: the visual grid
#
# Fast mode: a 128² crop of two mini validation photos, ×4 bicubic-downsampled to 32², then
# bicubic, the tiny teacher with 15 calls and with one call (its $f^*(x_T)$ guess stands in for a
# one-step *regression* student; no tiny SinSR is shipped) and the tiny RSD student with one call.
# Each photo has two rows: the whole 128² output, and its central 40² enlarged (nearest
# neighbour) — at 128² the differences in detail are hard to see, in the enlargement they are not.

# %%
def centre_crop(image, side=128):
    top, left = (image.shape[-2] - side) // 2, (image.shape[-1] - side) // 2
    return image[..., top:top + side, left:left + side]


unit = torch.stack([centre_crop(load_image(p)) for p in mini_photo_paths("val")[:2]])  # [0, 1]
hr, lq = unit * 2 - 1, bicubic_downsample(unit, scale=4) * 2 - 1  # the models work in [−1, 1]
with torch.no_grad():
    columns = {"LR (32²)": lq, "bicubic": bicubic_upsample(lq, scale=4).clamp(-1, 1),
               "teacher, 15 calls": upscale(teacher, lq, torch.Generator().manual_seed(SEED), tile=None),
               "teacher, 1 call": upscale(teacher, lq, torch.Generator().manual_seed(SEED), calls=1, tile=None),
               "RSD student, 1 call": upscale(student, lq, torch.Generator().manual_seed(SEED), tile=None),
               "ground truth": hr}
assert all(v.shape == hr.shape for k, v in columns.items() if k != "LR (32²)")
ZOOM = 40  # side of the enlarged centre, in HR pixels (the LR column: a quarter of it)
rows, row_titles = [], []
for i in range(len(hr)):
    rows.append([columns[k][i] for k in columns])
    rows.append([centre_crop(columns[k][i], ZOOM // 4 if k.startswith("LR") else ZOOM) for k in columns])
    row_titles += [f"photo {i + 1}, 128²", f"photo {i + 1}, centre {ZOOM}²"]
viz.image_grid(rows, titles=list(columns), row_titles=row_titles, size=2.3,
               suptitle=f"Shipped tiny models, seed {SEED} (Fig. 1/3 layout; the paper's models need a GPU, below)")

# %% [markdown]
# With the released weights, a GPU and RealSet65, the same grid with the paper's models (as in
# Figs. 1/3/7 of [P]). Guarded: it prints what is missing otherwise.

# %%
# NBVAL_SKIP
official = {"ResShift-15": "resshift-v1", "SinSR-1": "sinsr-v2", "RSD-1": "rsd"}
missing = {name: tables.missing_weights(name) for name in official.values()}
realset65 = locate_testset("realset65")
if not GPU or realset65 is None or any(missing.values()):
    print("full-scale grid skipped:", "no GPU;" * (not GPU), "RealSet65 absent;" * (realset65 is None),
          "; ".join(reason for reason in missing.values() if reason))
else:
    from rsd_mini.data import scan_images

    models = {label: tables.load_official(name, device="cuda") for label, name in official.items()}
    rows = []
    for path in scan_images(realset65.lq)[:2]:
        image = load_image(path)[None].cuda() * 2 - 1
        row = [image[0], bicubic_upsample(image, scale=4).clamp(-1, 1)[0]]
        for model in models.values():
            row.append(upscale(model, image, torch.Generator("cuda").manual_seed(SEED), tile=512, overlap=64)[0])
        rows.append([x.float().cpu() for x in row])
    display(viz.image_grid(rows, titles=["LR", "bicubic", *official], size=3))

# %% [markdown]
# ## 7. The full reproduction
#
# On a GPU with the weights and the data, `reproduce_table` fills Tables 1–3 (the same as
# `python -m rsd_mini reproduce --table N --json runs/tables`), writing
# `runs/tables/tableN.{json,md}`. Guarded: without them it prints what is missing.

# %%
# NBVAL_SKIP
if not (GPU and not FAST):
    print("skipped: needs a GPU and RSD_MINI_FULL=1; missing inputs per row are listed in section 2")
else:
    for number in (1, 2, 3):
        result = tables.reproduce_table(number, device="cuda", out=RESULTS, progress=True)
        display(Markdown(result.to_markdown()))

# %% [markdown]
# ## Exercises
#
# Each answer sits between nbgrader's solution markers; the student edition (`notebooks/student/`,
# `make student`) has `raise NotImplementedError()` there instead. The cell below each answer
# checks it with `rsd_mini.exercises` and says *not attempted*, *wrong* (with the first failing
# case) or *correct*.
#
# **Exercise 1 — the sign of an improvement** (≈ 5 min). Δ = ours − paper is positive when our
# number is larger, which is good for PSNR and bad for LPIPS. Return the relative change in %
# from the paper's value, positive when ours is *better*.

# %%
from rsd_mini import exercises


def improvement(paper_value, our_value, higher_is_better):
    """100 · (ours − paper) / |paper|, with the sign flipped where lower is better."""
    ### BEGIN SOLUTION
    change = 100 * (our_value - paper_value) / abs(paper_value)
    return change if higher_is_better else -change
    ### END SOLUTION


# %%
exercises.check_improvement(improvement)

# %% [markdown]
# **Exercise 2 — where does RSD beat SinSR?** (≈ 10 min) From Table 1 (RealSR), return the set
# of metrics on which RSD is *better* than SinSR. Mind the direction: for LPIPS, lower is better
# (`tables.METRICS[metric][2]` says whether higher is better).

# %%
def rsd_better(table):
    """Set of RealSR metrics of ``table`` on which RSD's value is better than SinSR's."""
    ### BEGIN SOLUTION
    better = set()
    for column in (c for c in table.columns if c.dataset == "realsr"):
        rsd, sinsr = table.value("RSD", column), table.value("SinSR", column)
        higher = tables.METRICS[column.metric][2]
        if (rsd > sinsr) if higher else (rsd < sinsr):
            better.add(column.metric)
    return better
    ### END SOLUTION


# %%
exercises.check_rsd_better(rsd_better, tables.paper_table(1), tables.METRICS)

# %% [markdown]
# **Exercise 3 — why one step is not 15× faster** (≈ 10 min). In [P] Table 4 (A100, 64² LR),
# 15-step ResShift takes 0.643 s and one-step RSD 0.059 s: 10.9×, not 15×, because each image
# also pays a fixed cost (VQ-f4 encoding and decoding, data movement) whatever the number of
# network calls. Model the wall time as NFE · per_call + overhead and return (per_call,
# overhead) from two measured times; then apply it to Table 4's numbers.

# %%
def call_and_overhead(ms_many, nfe_many, ms_one, nfe_one):
    """(ms per network call, fixed ms per image) from ms_many at nfe_many calls and ms_one at nfe_one."""
    ### BEGIN SOLUTION
    per_call = (ms_many - ms_one) / (nfe_many - nfe_one)
    return per_call, ms_one - nfe_one * per_call
    ### END SOLUTION


# %%
exercises.check_call_and_overhead(call_and_overhead)

# %% [markdown]
# ## Summary
#
# * Tables 1–6 and 20/21 of the paper are data in `rsd_mini.fullscale.tables.PAPER_TABLES`; three rows per
#   main table can be rerun with released weights (ResShift v1, SinSR, RSD).
# * `reproduce_table(N)` (or `python -m rsd_mini reproduce --table N`) evaluates them with the
#   paper protocol, and every empty cell says why: weights absent (and where to put them), data
#   absent, no pyiqa, set-level FID, no released weights.
# * The radar chart depends on the methods shown; the miniature run checks the code, not the paper.
#
# **Where this lives in the library.** `rsd_mini/tables.py` (`PAPER_TABLES`, `reproduce_table`,
# `format_table`, `Table.to_markdown`), `rsd_mini/viz.py` (`radar_chart`, `radar_normalise`,
# `image_grid`), `rsd_mini/evaluate.py` (`evaluate_folder`), `rsd_mini/weights.py`,
# `rsd_mini/prepare.py`.
#
# **Next:** the README's GPU recipe, to fill the tables on your own machine.
