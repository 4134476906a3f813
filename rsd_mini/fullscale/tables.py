"""The RSD paper's result tables as data, and their reproduction with the released weights
(RSD_SPEC §5 "Results to reproduce", §6 "Metrics"; ``python -m rsd_mini reproduce --table N``).

:data:`PAPER_TABLES` holds Tables 1–6 and 20/21 of [P] (arXiv 2503.13358v5): rows (method, NFE,
the registry name of its released weights or None) × columns (data set, metric) → value.
Metric names are those of :func:`rsd_mini.evaluate.evaluate_folder` (``psnr``, ``ssim``) and of
pyiqa (``lpips``, ``clipiqa``, ``musiq``, ``dists``, ``niqe``, ``maniqa-pipal``, as in [RSD]
``evaluate.py``); ``fid`` is a set-level metric that is not computed here.

:func:`reproduce_table` evaluates every row whose weights and data set are present with the
paper protocol — Y-channel PSNR/SSIM on the full image, pyiqa for the perceptual metrics, LR
tiles of 512 at stride 448 (overlap 64) averaged uniformly, seed 12345 (RSD_SPEC §4c) — and
leaves every other "ours" cell empty with the reason. Each cell holds the paper's value, ours
and Δ = ours − paper.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from rsd_mini import evaluate, metrics
from rsd_mini.fullscale import prepare, weights
from rsd_mini.checkpoint import write_bytes_atomic
from rsd_mini.fullscale.official import load_official_model

#: Inference protocol of the paper's evaluation (RSD_SPEC §4c): seed, LR tile side, overlap.
PAPER_SEED, PAPER_TILE, PAPER_OVERLAP = 12345, 512, 64
#: Tables :func:`reproduce_table` can run (Table 4 is timing on an A100: paper numbers only).
REPRODUCIBLE = (1, 2, 3, 5, 6, 20)
#: The weights every latent-space model needs besides its UNet (RSD_SPEC §1 "Spaces").
AUTOENCODER = "vq-f4"

DATASET_LABELS = {"realsr": "RealSR", "realset65": "RealSet65", "imagenet-test": "ImageNet-Test",
                  "div2k-val-512": "DIV2K-Val (512²)", "drealsr-512": "DRealSR (512²)",
                  "realsr-512": "RealSR (512²)", "a100-64": "A100, 64² LR"}
#: Display label, decimals, and whether higher is better, by metric name.
METRICS = {"psnr": ("PSNR", 2, True), "ssim": ("SSIM", 4, True), "lpips": ("LPIPS", 4, False),
           "dists": ("DISTS", 4, False), "niqe": ("NIQE", 4, False), "musiq": ("MUSIQ", 3, True),
           "maniqa-pipal": ("MANIQA", 4, True), "clipiqa": ("CLIPIQA", 4, True), "fid": ("FID", 2, False),
           "seconds": ("time (s)", 3, False), "params_m": ("params (M)", 0, False),
           "peak_memory_mb": ("peak memory (MB)", 0, False)}
#: Metrics :func:`evaluate_folder` computes without pyiqa, and those needing ground truth.
BUILT_IN = evaluate.FULL_REFERENCE
FULL_REFERENCE = (*evaluate.FULL_REFERENCE, *metrics.PERCEPTUAL_FULL_REFERENCE)
FID_REASON = "n/a (set-level, not computed)"
NOT_RELEASED = "no released weights for this variant"
THIRD_PARTY = "third-party method: not in rsd-mini's weights registry"


# ----------------------------------------------------------------------------- the paper's numbers
@dataclass(frozen=True)
class Column:
    """One (data set, metric) column of a table."""

    dataset: str
    metric: str

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.metric}"

    @property
    def label(self) -> str:
        return METRICS[self.metric][0]


@dataclass(frozen=True)
class PaperRow:
    """A method as the paper reports it: ``model`` is its name in :mod:`rsd_mini.fullscale.weights`, or
    None when no weights can be run (``unavailable`` says why). ``values`` follow the columns."""

    method: str
    nfe: int
    model: str | None
    values: tuple[float | None, ...]
    unavailable: str = ""
    note: str = ""


@dataclass(frozen=True)
class PaperTable:
    """Table ``number`` of [P]: its columns and rows."""

    number: int
    title: str
    columns: tuple[Column, ...]
    rows: tuple[PaperRow, ...]

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(column.dataset for column in self.columns))

    def value(self, method: str, column: Column) -> float | None:
        return self.row(method).values[self.columns.index(column)]

    def row(self, method: str) -> PaperRow:
        return _find_row(self.rows, method, self.number)


def _find_row(rows, method: str, number: int):
    for row in rows:
        if row.method == method:
            return row
    raise ValueError(f"method={method!r}: not in Table {number}; expected one of {[row.method for row in rows]}")


def _numbers(text: str) -> tuple[float, ...]:
    """'25.91/.754/.273' → (25.91, 0.754, 0.273), as RSD_SPEC §5 writes rows."""
    return tuple(float(part) for part in text.split("/"))


def _table(number: int, title: str, columns: Sequence[tuple[str, Sequence[str]]], rows: Sequence[tuple]) -> PaperTable:
    """Build a table from (data set, metrics) groups and rows (method, NFE, model, values text
    per data set, optional unavailable reason, optional note)."""
    flat = tuple(Column(dataset, metric) for dataset, names in columns for metric in names)
    built = []
    for method, nfe, model, texts, *rest in rows:
        values = sum((_numbers(text) for text in ((texts,) if isinstance(texts, str) else texts)), ())
        if len(values) != len(flat):
            raise AssertionError(f"Table {number}, {method}: {len(values)} values for {len(flat)} columns")
        unavailable = rest[0] if rest and rest[0] else ("" if model else NOT_RELEASED)
        built.append(PaperRow(method, nfe, model, values, unavailable, rest[1] if len(rest) > 1 else ""))
    return PaperTable(number, title, flat, tuple(built))


_REAL = ("psnr", "ssim", "lpips", "clipiqa", "musiq")
_SIN_NOTE = "[P] does not say which SinSR checkpoint (open question 6); its Table 13 names SinSR_v2.pth"
_TABLE_1 = _table(1, "Full-size RealSR (100 images) and RealSet65 (65 images), ×4 ([P] Table 1)",
                  [("realsr", _REAL), ("realset65", ("clipiqa", "musiq"))], [
    ("ResShift (v1)", 15, "resshift-v1", "26.49/0.754/0.360/0.5958/59.873/0.6537/61.330"),
    ("SinSR (distill only)", 1, None, "26.14/0.732/0.357/0.6119/57.118/0.6822/61.267"),
    ("SinSR", 1, "sinsr-v2", "25.83/0.717/0.365/0.6887/61.582/0.7150/62.169", "", _SIN_NOTE),
    ("ResShift-VSD", 1, None, "23.96/0.616/0.466/0.7479/63.298/0.7606/66.701"),
    ("RSD (distill only)", 1, None, "24.92/0.696/0.355/0.7518/66.430/0.7534/68.383"),
    ("RSD", 1, "rsd", "25.91/0.754/0.273/0.7060/65.860/0.7267/69.172"),
    ("CTMSR", 1, None, "26.18/0.765/0.294/0.6449/64.796/0.6893/67.173", THIRD_PARTY),
    ("OSEDiff", 1, None, "25.25/0.737/0.299/0.6772/67.602/0.6836/68.853", THIRD_PARTY),
    ("SUPIR", 50, None, "24.38/0.698/0.331/0.5449/63.676/0.6133/66.460", THIRD_PARTY),
    ("BSRGAN", 1, None, "26.51/0.775/0.269/0.5439/63.586/0.6163/65.582", THIRD_PARTY),
    ("Real-ESRGAN", 1, None, "25.85/0.773/0.273/0.4898/59.678/0.5995/63.220", THIRD_PARTY)])

_TABLE_2 = _table(2, "ImageNet-Test (3000 images, 256² HR), ×4 ([P] Table 2)",
                  [("imagenet-test", (*_REAL, "fid"))], [
    ("ResShift (v1)", 15, "resshift-v1", "25.01/0.677/0.231/0.592/53.660/30.34"),
    ("SinSR (distill only)", 1, None, "24.69/0.664/0.222/0.607/53.316/32.13"),
    ("SinSR", 1, "sinsr-v2", "24.56/0.657/0.221/0.611/53.357/25.85", "", _SIN_NOTE),
    ("ResShift-VSD", 1, None, "23.69/0.624/0.230/0.665/58.630/32.22"),
    ("RSD (distill only)", 1, None, "23.97/0.643/0.217/0.660/57.831/28.93"),
    ("RSD", 1, "rsd", "24.31/0.657/0.193/0.681/58.947/25.46"),
    ("CTMSR", 1, None, "24.73/0.666/0.197/0.691/60.142/24.19", THIRD_PARTY),
    ("OSEDiff", 1, None, "23.02/0.619/0.253/0.677/60.755/23.13", THIRD_PARTY),
    ("SUPIR", 50, None, "22.56/0.574/0.302/0.786/60.487/24.70", THIRD_PARTY)])

_T3 = ("psnr", "ssim", "lpips", "dists", "niqe", "musiq", "maniqa-pipal", "clipiqa", "fid")
_TABLE_3 = _table(3, "512² crops of StableSR (OSEDiff protocol), ×4 ([P] Table 3)",
                  [("div2k-val-512", _T3), ("drealsr-512", _T3), ("realsr-512", _T3)], [
    ("ResShift (v1)", 15, "resshift-v1", ("24.65/.6181/.3349/.2213/6.8212/61.09/.5454/.6071/36.11",
                                          "28.46/.7673/.4006/.2656/8.1249/50.60/.4586/.5342/172.26",
                                          "26.31/.7421/.3421/.2498/7.2365/58.43/.5285/.5442/141.71")),
    ("SinSR", 1, "sinsr-v2", ("24.41/.6018/.3240/.2066/6.0159/62.82/.5386/.6471/35.57",
                              "28.36/.7515/.3665/.2485/6.9907/55.33/.4884/.6383/170.57",
                              "26.28/.7347/.3188/.2353/6.2872/60.80/.5385/.6122/135.93"), "", _SIN_NOTE),
    ("OSEDiff", 1, None, ("23.72/.6108/.2941/.1976/4.7097/67.97/.6148/.6683/26.32",
                          "27.92/.7835/.2968/.2165/6.4902/64.65/.5899/.6963/135.30",
                          "25.15/.7341/.2921/.2128/5.6476/69.09/.6326/.6693/123.49"), THIRD_PARTY),
    ("RSD", 1, "rsd", ("23.91/.6042/.2857/.1940/5.1987/68.05/.5937/.6967/34.84",
                       "27.40/.7559/.3042/.2343/6.2577/62.03/.5625/.7019/167.47",
                       "25.61/.7420/.2675/.2205/5.7500/66.02/.5930/.6793/138.23"))])

_TIMING = "measured on an A100 by the authors; not reproduced by this command"
_TABLE_4 = _table(4, "Complexity on an A100, 64² LR ([P] Table 4)",
                  [("a100-64", ("seconds", "params_m", "peak_memory_mb"))], [
    ("ResShift (v1)", 15, None, "0.643/174/1167", _TIMING, "training: 110 h on 1 A100"),
    ("SinSR", 1, None, "0.060/174/570", _TIMING, "training: 60 h on 1 A100"),
    ("CTMSR", 1, None, "0.059/172/904", _TIMING, "training: 58 h on 4 A100"),
    ("RSD", 1, None, "0.059/174/539", _TIMING, "training: 5 h on 4 A100"),
    ("OSEDiff", 1, None, "0.075/1775/3651", _TIMING, "training: 24 h on 4 A100"),
    ("SUPIR", 50, None, "17.704/4801/52535", _TIMING, "training: 240 h on 64 A6000")])

_ABLATION = ("psnr", "lpips", "clipiqa", "musiq")
_TABLE_5 = _table(5, "Number of nodes N, distill only, full RealSR ([P] Table 5)", [("realsr", _ABLATION)], [
    ("N=1", 1, None, "24.82/.4052/.7444/64.290"),
    ("N=2", 1, None, "24.77/.3772/.7523/65.760"),
    ("N=4 (RSD distill only)", 1, None, "24.92/.3552/.7518/66.430"),
    ("N=8", 1, None, "25.63/.3199/.7286/66.445"),
    ("N=15", 1, None, "25.91/.2940/.6857/65.689")])

_LABEL_NOTE = "row label read from the numbers (RSD_SPEC §5, Table 6)"
_TABLE_6 = _table(6, "Supervised losses, full RealSR ([P] Table 6)", [("realsr", _ABLATION)], [
    ("none (λ₁ = λ₂ = 0)", 1, None, "24.92/.3552/.7518/66.430"),
    ("LPIPS only (λ₂ = 0)", 1, None, "26.01/.2708/.7089/65.178", "", _LABEL_NOTE),
    ("GAN only (λ₁ = 0)", 1, None, "24.98/.3064/.6970/67.615", "", _LABEL_NOTE),
    ("LPIPS + GAN (RSD)", 1, "rsd", "25.91/.2726/.7060/65.860")])

_TABLE_20 = _table(20, "Fake steps K per generator step, with supervised losses ([P] Tables 20/21)",
                   [("realsr", _REAL), ("imagenet-test", ("lpips",))], [
    ("K=1", 1, None, "25.99/.756/.2713/.7159/66.247/.196"),
    ("K=3", 1, None, "25.86/.752/.2701/.7093/66.140/.191"),
    ("K=5 (RSD)", 1, "rsd", "25.91/.754/.2726/.7060/65.860/.193"),
    ("K=10", 1, None, "26.27/.749/.2732/.7135/65.233/.193")])

#: The paper's tables by number.
PAPER_TABLES: dict[int, PaperTable] = {t.number: t for t in (_TABLE_1, _TABLE_2, _TABLE_3, _TABLE_4, _TABLE_5,
                                                              _TABLE_6, _TABLE_20)}


def paper_table(number: int) -> PaperTable:
    """Table ``number`` of [P] (one of :data:`PAPER_TABLES`)."""
    if isinstance(number, bool) or number not in PAPER_TABLES:
        raise ValueError(f"number={number!r}: expected a table of the paper, one of {sorted(PAPER_TABLES)}")
    return PAPER_TABLES[number]


# ----------------------------------------------------------------------------- results
@dataclass
class Cell:
    """The paper's value, ours (None with a ``reason`` when not computed) and Δ = ours − paper."""

    paper: float | None
    ours: float | None = None
    reason: str | None = None

    @property
    def delta(self) -> float | None:
        return None if self.ours is None or self.paper is None else self.ours - self.paper


@dataclass
class ResultRow:
    """A method's cells by column key (``dataset/metric``) and its runs by data set
    (``num_images``, ``count``, ``nfe``, ``seconds_per_image``)."""

    method: str
    nfe: int
    model: str | None
    cells: dict[str, Cell]
    runs: dict[str, dict] = field(default_factory=dict)
    note: str = ""


@dataclass
class Table:
    """A paper table with our numbers beside it (:func:`reproduce_table`)."""

    number: int
    title: str
    columns: tuple[Column, ...]
    rows: list[ResultRow]
    protocol: dict = field(default_factory=dict)

    @classmethod
    def from_paper(cls, paper: PaperTable, protocol: dict | None = None) -> "Table":
        """Every cell holds the paper's value; ours empty, reason not yet known."""
        rows = [ResultRow(row.method, row.nfe, row.model,
                          {c.key: Cell(v, reason=row.unavailable or None) for c, v in zip(paper.columns, row.values)},
                          note=row.note) for row in paper.rows]
        return cls(paper.number, paper.title, paper.columns, rows, dict(protocol or {}))

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(column.dataset for column in self.columns))

    def row(self, method: str) -> ResultRow:
        return _find_row(self.rows, method, self.number)

    def to_dict(self) -> dict:
        """JSON-ready: table, title, protocol, columns, rows with per-cell paper/ours/delta/reason."""
        rows = [dict(method=r.method, nfe=r.nfe, model=r.model, note=r.note, runs=r.runs,
                     cells=[dict(dataset=c.dataset, metric=c.metric, paper=r.cells[c.key].paper,
                                 ours=r.cells[c.key].ours, delta=r.cells[c.key].delta,
                                 reason=r.cells[c.key].reason) for c in self.columns]) for r in self.rows]
        return dict(table=self.number, title=self.title, protocol=self.protocol,
                    columns=[dict(dataset=c.dataset, metric=c.metric) for c in self.columns], rows=rows)

    @classmethod
    def from_dict(cls, data: dict) -> "Table":
        """The inverse of :meth:`to_dict` (e.g. a ``table1.json`` written earlier)."""
        try:
            columns = tuple(Column(c["dataset"], c["metric"]) for c in data["columns"])
            rows = [ResultRow(r["method"], r["nfe"], r["model"],
                              {Column(c["dataset"], c["metric"]).key: Cell(c["paper"], c["ours"], c["reason"])
                               for c in r["cells"]}, r.get("runs", {}), r.get("note", ""))
                    for r in data["rows"]]
            return cls(data["table"], data["title"], columns, rows, data.get("protocol", {}))
        except (KeyError, TypeError) as error:
            raise ValueError(f"data: not a table written by Table.to_dict ({type(error).__name__}: {error})") from error

    def to_markdown(self) -> str:
        """One Markdown table per data set: method, NFE, then paper | ours | Δ per metric; the
        reasons for empty "ours" cells follow as notes."""
        parts = [f"### Table {self.number}: {self.title}", ""]
        for dataset in self.datasets:
            columns = _columns_of(self, dataset)
            header = ["method", "NFE"] + [f"{c.label} {part}" for c in columns for part in ("paper", "ours", "Δ")]
            parts += [f"**{DATASET_LABELS.get(dataset, dataset)}**", "", _md_row(header),
                      _md_row(["---"] * len(header))]
            for row in self.rows:
                cells = [_cell_texts(row.cells[c.key], c.metric) for c in columns]
                parts.append(_md_row([row.method, str(row.nfe)] + [t for texts in cells for t in texts]))
            notes = _notes(self, dataset)
            parts += [""] + [f"- {note}" for note in notes] + ([""] if notes else [])
        return "\n".join(parts).rstrip() + "\n"

    def write(self, out: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``table{N}.json`` and ``table{N}.md`` into folder ``out`` (or, when ``out`` ends
        in ``.json``, that file and the ``.md`` beside it), each atomically."""
        out = Path(out)
        json_path = out if out.suffix == ".json" else out / f"table{self.number}.json"
        md_path = json_path.with_suffix(".md")
        write_bytes_atomic(json_path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())
        write_bytes_atomic(md_path, self.to_markdown().encode())
        return json_path, md_path

    def __str__(self) -> str:
        return format_table(self)


def load_table(path: str | os.PathLike) -> Table:
    """A table written by :meth:`Table.write`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path={str(path)!r}: no such table file")
    return Table.from_dict(json.loads(path.read_text()))


def _format(value: float | None, metric: str, signed: bool = False) -> str:
    if value is None:
        return "–"
    decimals = METRICS[metric][1]
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def _cell_texts(cell: Cell, metric: str) -> tuple[str, str, str]:
    return _format(cell.paper, metric), _format(cell.ours, metric), _format(cell.delta, metric, signed=True)


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _notes(table: Table, dataset: str) -> list[str]:
    """'method: reason (metrics)' for every empty "ours" cell of ``dataset``, grouped, plus the
    subsets evaluated under ``limit``."""
    notes, columns = [], _columns_of(table, dataset)
    for row in table.rows:
        by_reason: dict[str, list[str]] = {}
        for column in columns:
            cell = row.cells[column.key]
            if cell.ours is None and cell.reason:
                by_reason.setdefault(cell.reason, []).append(column.label)
        for reason, labels in by_reason.items():
            notes.append(f"{row.method}: {reason}" + ("" if len(labels) == len(columns) else f" ({', '.join(labels)})"))
        run = row.runs.get(dataset)
        if run and run.get("count") and run["num_images"] < run["count"]:
            notes.append(f"{row.method}: ours on the first {run['num_images']} of {run['count']} images (limit)")
    return notes


def format_table(table: Table | PaperTable | int) -> str:
    """Plain text for a terminal: per data set, one line per method and metric with the paper's
    value, ours and Δ, then why "ours" cells are empty (one note per method and reason). Accepts a :class:`Table`, a
    :class:`PaperTable` or a table number (the paper's numbers alone)."""
    if not isinstance(table, Table):
        table = Table.from_paper(table if isinstance(table, PaperTable) else paper_table(table))
    lines = [f"Table {table.number}: {table.title}"]
    for dataset in table.datasets:
        lines += ["", DATASET_LABELS.get(dataset, dataset),
                  f"  {'method':<24} {'NFE':>3}  {'metric':<16} {'paper':>9} {'ours':>9} {'Δ':>9}"]
        for row in table.rows:
            for column in _columns_of(table, dataset):
                cell = row.cells[column.key]
                paper, ours, delta = _cell_texts(cell, column.metric)
                lines.append(f"  {row.method:<24} {row.nfe:>3}  {column.label:<16} {paper:>9} {ours:>9} {delta:>9}")
        lines += [f"  * {note}" for note in _notes(table, dataset)]
    return "\n".join(lines)


def paper_markdown(number: int) -> str:
    """The paper's Table ``number`` as Markdown, laid out like the paper (method × metric, one
    block of columns per data set, no "ours")."""
    paper = paper_table(number)
    header = ["method", "NFE"] + [f"{DATASET_LABELS.get(c.dataset, c.dataset)} {c.label}" for c in paper.columns]
    lines = [f"**Table {number}: {paper.title}**", "", _md_row(header), _md_row(["---"] * len(header))]
    for row in paper.rows:
        values = [_format(v, c.metric) for c, v in zip(paper.columns, row.values)]
        lines.append(_md_row([row.method, str(row.nfe)] + values))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- reproduction
LoadModel = Callable[..., object]
LocateData = Callable[..., object]
#: Errors that mean "this model or data set cannot be used here" (recorded as the reason).
_UNAVAILABLE = (OSError, ImportError, ValueError, RuntimeError, KeyError, NotImplementedError)


def missing_weights(name: str, weights_dir: str | os.PathLike | None = None) -> str | None:
    """Why the official model ``name`` cannot be loaded from ``weights_dir`` (its UNet file and
    the VQ-f4 autoencoder are needed), or None when both files are present and verified."""
    try:
        absent = [weights.get_spec(n) for n in (name, AUTOENCODER) if weights.locate(n, weights_dir) is None]
    except ValueError as error:  # a corrupt file (WeightsIntegrityError) or an unknown name
        return str(error)
    if not absent:
        return None
    return (f"weights absent: put {', '.join(spec.filename for spec in absent)} in "
            f"{weights.weights_dir(weights_dir)} (python -m rsd_mini weights download "
            f"{' '.join(spec.name for spec in absent)})")


def load_official(name: str, weights_dir: str | os.PathLike | None = None, device: str = "cpu"):
    """The default ``load_model`` of :func:`reproduce_table`: the official model ``name`` via
    :func:`rsd_mini.fullscale.official.load_official_model` (fp16 on a GPU, as the official sampler)."""
    return load_official_model(name, weights_dir=weights_dir, device=device,
                               fp16=torch.device(device).type == "cuda")


def _data_absent(name: str, root: str | os.PathLike | None) -> str:
    return (f"data absent: {DATASET_LABELS.get(name, name)} not found complete at {prepare.data_root(root) / name} "
            f"(python -m rsd_mini data check {name} lists what is missing)")


def _find_data(name: str, root, locate_data: LocateData):
    """(test set, None) or (None, reason)."""
    try:
        found = locate_data(name, root)
    except _UNAVAILABLE as error:
        return None, f"data not located: {type(error).__name__}: {error}"
    return (found, None) if found is not None else (None, _data_absent(name, root))


def _perceptual_reason(metric: str, device: str, cache: dict) -> str | None:
    """None if pyiqa can build ``metric`` here, else why not (cached per metric)."""
    if metric not in cache:
        try:
            metrics.perceptual_metric(metric, device)
            cache[metric] = None
        except RuntimeError as error:
            cache[metric] = f"perceptual metric unavailable: {error}"
    return cache[metric]


def _metric_plan(columns: Sequence[Column], has_gt: bool, perceptual: bool, device: str,
                 cache: dict) -> tuple[list[str], dict[str, str]]:
    """The pyiqa metrics to compute for one data set, and the reason for each skipped column."""
    wanted, skipped = [], {}
    for column in columns:
        metric = column.metric
        if metric == "fid":
            skipped[metric] = FID_REASON
        elif metric in FULL_REFERENCE and not has_gt:
            skipped[metric] = "no ground truth in this data set"
        elif metric not in BUILT_IN and not perceptual:
            skipped[metric] = "perceptual metrics off (perceptual=False)"
        elif metric not in BUILT_IN:
            reason = _perceptual_reason(metric, device, cache)
            if reason:
                skipped[metric] = reason
            else:
                wanted.append(metric)
    return wanted, skipped


def _evaluate_cells(row: ResultRow, columns: Sequence[Column], model, testset, *, limit, device, perceptual,
                    cache, progress) -> None:
    """Fill ``row``'s cells of one data set with :func:`evaluate_folder` under the paper protocol."""
    wanted, skipped = _metric_plan(columns, testset.gt is not None, perceptual, device, cache)
    try:
        result = evaluate.evaluate_folder(model, testset.lq, testset.gt, seed=PAPER_SEED, limit=limit, tile=PAPER_TILE,
                                 overlap=PAPER_OVERLAP, perceptual=tuple(wanted), progress=progress)
    except _UNAVAILABLE as error:
        for column in columns:
            row.cells[column.key].reason = f"evaluation failed: {type(error).__name__}: {error}"
        return
    for column in columns:
        cell = row.cells[column.key]
        cell.ours = result.get(f"mean_{column.metric}") if column.metric not in skipped else None
        cell.reason = skipped.get(column.metric) if cell.ours is None else None
        if cell.ours is None and cell.reason is None:
            cell.reason = f"evaluate_folder returned no mean_{column.metric}"
    row.runs[columns[0].dataset] = dict(num_images=result["num_images"], count=getattr(testset, "count", None),
                                        nfe=result["nfe"], seconds_per_image=result["seconds_per_image"])


def _selected(paper: PaperTable, methods: Sequence[str] | None) -> set[str]:
    if methods is None:
        return {row.method for row in paper.rows}
    if isinstance(methods, str):
        methods = [methods]
    known = [row.method for row in paper.rows]
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise ValueError(f"methods={list(methods)!r}: {unknown} not in Table {paper.number}; expected some of {known}")
    return set(methods)


def _check_number(number) -> PaperTable:
    if isinstance(number, bool) or number not in REPRODUCIBLE:
        hint = f" (Table 4 is {_TIMING})" if number == 4 else ""
        raise ValueError(f"number={number!r}: expected a table to reproduce, one of {REPRODUCIBLE}{hint}")
    return PAPER_TABLES[number]


def reproduce_table(number: int, *, weights_dir: str | os.PathLike | None = None,
                    data_root: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
                    limit: int | None = None, device: str = "cpu", methods: Sequence[str] | None = None,
                    load_model: LoadModel | None = None, locate_data: LocateData | None = None,
                    progress: bool = False, perceptual: bool = True, dry_run: bool = False) -> Table:
    """Table ``number`` of [P] (one of :data:`REPRODUCIBLE`) with our numbers beside the paper's.

    For every row (or those named in ``methods``) with released weights, and every data set of
    the table, the model is evaluated with :func:`rsd_mini.evaluate.evaluate_folder` under the
    paper protocol (:data:`PAPER_SEED`, tiles :data:`PAPER_TILE`/:data:`PAPER_OVERLAP`, Y-channel
    PSNR/SSIM, pyiqa perceptual metrics unless ``perceptual`` is False) on the first ``limit``
    images (default all). Cells that cannot be computed keep ``ours=None`` and a reason: weights
    absent (and where to put them), data absent, no pyiqa, FID, no released weights.

    ``load_model(name, weights_dir=, device=)`` (default :func:`load_official`) returns a model
    for ``evaluate_folder`` or raises (the error is the reason); ``locate_data(name, root)``
    (default :func:`rsd_mini.fullscale.prepare.locate_testset`) returns an object with ``.lq``, ``.gt`` (or None),
    ``.count``, or None. ``dry_run``: only find what is present (runnable cells get the reason
    "ready"). ``out``: also write ``table{N}.json`` and ``.md`` there (:meth:`Table.write`).
    """
    paper = _check_number(number)
    selected = _selected(paper, methods)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit={limit!r}: expected a positive number of images or None (all)")
    protocol = dict(seed=PAPER_SEED, tile=PAPER_TILE, overlap=PAPER_OVERLAP, psnr_ssim="Y channel (BT.601), "
                    "full image, no border crop", perceptual="pyiqa" if perceptual else "off", limit=limit,
                    device=str(device), dry_run=dry_run)
    table = Table.from_paper(paper, protocol)
    data = {name: _find_data(name, data_root, locate_data or prepare.locate_testset) for name in paper.datasets}
    cache: dict[str, str | None] = {}
    for row in table.rows:
        if row.model is None:
            continue  # the paper row's reason stays: third party, or no released weights
        if row.method not in selected:
            _set_reason(row, paper.columns, f"not selected (methods={sorted(selected)})")
            continue
        absent = missing_weights(row.model, weights_dir) if load_model is None else None
        present = [d for d in paper.datasets if data[d][0] is not None]
        for dataset in paper.datasets:
            if data[dataset][0] is None:
                _set_reason(row, _columns_of(paper, dataset), "; ".join(filter(None, (data[dataset][1], absent))))
        if not present:
            continue
        model, reason = (None, absent) if absent else _model(row.model, weights_dir, device, load_model, dry_run)
        for dataset in present:
            columns = _columns_of(paper, dataset)
            if model is None:
                _set_reason(row, columns, reason)
            else:
                _evaluate_cells(row, columns, model, data[dataset][0], limit=limit, device=device,
                                perceptual=perceptual, cache=cache, progress=progress)
    if out is not None:
        table.write(out)
    return table


def _columns_of(table: PaperTable | Table, dataset: str) -> list[Column]:
    return [c for c in table.columns if c.dataset == dataset]


def _set_reason(row: ResultRow, columns: Sequence[Column], reason: str) -> None:
    for column in columns:
        row.cells[column.key].reason = reason


def _model(name: str, weights_dir, device: str, load_model: LoadModel | None, dry_run: bool):
    """(model, None) or (None, reason); a dry run loads nothing."""
    if dry_run:
        return None, "ready (dry run): weights and data present"
    try:
        return (load_model or load_official)(name, weights_dir=weights_dir, device=device), None
    except FileNotFoundError as error:  # load_official: "weights absent: put ... in ..."
        return None, str(error)
    except _UNAVAILABLE as error:
        return None, f"model not loaded: {type(error).__name__}: {error}"


# ----------------------------------------------------------------------------- command line
def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """``--table N`` and its options, for ``python -m rsd_mini reproduce``."""
    parser.add_argument("--table", type=int, choices=REPRODUCIBLE, metavar="N",
                        help=f"reproduce Table N of the paper ({', '.join(map(str, REPRODUCIBLE))}) with the "
                             "released weights: paper | ours | Δ")
    parser.add_argument("--weights-dir", metavar="DIR", help="official weights (default: $RSD_MINI_WEIGHTS or "
                                                             "~/.cache/rsd-mini/weights)")
    parser.add_argument("--data-root", metavar="DIR", help="test sets (default: $RSD_MINI_DATA or "
                                                           "~/.cache/rsd-mini/data)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N images of each set")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="write the table there: a folder (tableN.json + tableN.md) or a .json file")
    parser.add_argument("--methods", nargs="+", metavar="METHOD", help="only these rows (default: all)")


def run_table(args: argparse.Namespace) -> int:
    """``python -m rsd_mini reproduce --table N``: print paper | ours | Δ, write JSON/Markdown."""
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        table = reproduce_table(args.table, weights_dir=args.weights_dir, data_root=args.data_root,
                                limit=args.limit, device=device, methods=getattr(args, "methods", None),
                                progress=not getattr(args, "no_progress", False))
    except ValueError as error:
        sys.exit(f"rsd_mini: error: {error}")
    print(format_table(table))
    if args.json is not None:
        json_path, md_path = table.write(args.json)
        print(f"\nwritten: {json_path}, {md_path}")
    return 0
