"""Command line: ``python -m rsd_mini <command> ...`` (also installed as ``rsd-mini``).

Each command is one function registered with :func:`command`, which names it, gives its help
line and a function that adds its arguments::

    @command("evaluate", "Evaluate a teacher checkpoint.", _evaluate_arguments)
    def evaluate(args: argparse.Namespace) -> int: ...
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Callable

from rsd_mini.config import (PRESETS, DistillConfig, TeacherConfig, apply_overrides, config_to_yaml,
                             load_config)


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


#: The subcommands, by name, in the order ``--help`` lists them.
COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register the decorated function as subcommand ``name``."""
    def register(run: Callable[[argparse.Namespace], int | None]):
        COMMANDS[name] = Command(help, add_arguments, run)
        return run
    return register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rsd_mini", description=(
        "rsd-mini: ResShift teachers and RSD one-step students (arXiv 2503.13358)."))
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, cmd in COMMANDS.items():
        sub = subparsers.add_parser(name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command].run(args) or 0


# --------------------------------------------------------------------- config arguments
def _config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="tiny", metavar="NAME_OR_YAML",
                        help=f"a preset ({', '.join(PRESETS)}) or a YAML file (default: tiny)")
    parser.add_argument("overrides", nargs="*", metavar="SECTION.KEY=VALUE",
                        help="config overrides, e.g. optim.lr=1e-4 unet.channel_mult=[1,2,2]")


def resolve_config(args: argparse.Namespace, extra: list[str] = ()) -> TeacherConfig | DistillConfig:
    """The config named by ``--config`` with the overrides applied; exits with a message on error."""
    try:
        return apply_overrides(load_config(args.config), [*args.overrides, *extra])
    except (ValueError, TypeError, FileNotFoundError) as error:
        sys.exit(f"rsd_mini: error: {error}")


@command("config", "Print a teacher or distillation config (preset or YAML plus overrides) as YAML.", _config_arguments)
def show_config(args: argparse.Namespace) -> int:
    print(config_to_yaml(resolve_config(args)), end="")
    return 0


# --------------------------------------------------------------------- train-teacher
def _train_teacher_arguments(parser: argparse.ArgumentParser) -> None:
    _config_arguments(parser)
    parser.add_argument("--out", metavar="DIR", help="run folder (overrides train.out_dir)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if DIR/last.pt exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


@command("train-teacher", "Train a ResShift teacher (RSD_SPEC §1).", _train_teacher_arguments)
def train_teacher(args: argparse.Namespace) -> int:
    from rsd_mini.train import TeacherTrainer

    config = resolve_config(args, [f"train.out_dir={args.out}"] if args.out else [])
    if not isinstance(config, TeacherConfig):
        sys.exit(f"rsd_mini: error: --config {args.config} is a distillation config; use "
                 "python -m rsd_mini distill, or a teacher config (tiny, resshift-v1)")
    trainer = TeacherTrainer(config, device=args.device)
    print(f"run: {trainer.out_dir} (config.yaml, log.jsonl, last.pt) on {trainer.device}")
    result = trainer.fit(progress=not args.no_progress, resume=not args.no_resume)
    print(f"step {result['step']}: final loss {_format(result['loss'])}; checkpoint {trainer.checkpoint_path}")
    return 0


# --------------------------------------------------------------------- distill
def _distill_arguments(parser: argparse.ArgumentParser) -> None:
    _train_teacher_arguments(parser)
    parser.set_defaults(config="rsd-tiny")
    parser.add_argument("--teacher", metavar="CKPT", help="teacher checkpoint (overrides distill.teacher)")


@command("distill", "Distil a ResShift teacher into a one-step RSD student (RSD_SPEC §4).",
         _distill_arguments)
def distill(args: argparse.Namespace) -> int:
    from rsd_mini.distill_train import RSDTrainer

    extra = [f"train.out_dir={args.out}"] * bool(args.out) + [f"distill.teacher={args.teacher}"] * bool(args.teacher)
    config = resolve_config(args, extra)
    if not isinstance(config, DistillConfig):
        sys.exit(f"rsd_mini: error: --config {args.config} is a teacher config; expected a "
                 "distillation config (rsd-tiny, rsd-paper or a YAML file with a distill section)")
    try:
        trainer = RSDTrainer(config, device=args.device)
    except (FileNotFoundError, RuntimeError, ValueError) as error:
        sys.exit(f"rsd_mini: error: {error}")
    print(f"run: {trainer.out_dir} (config.yaml, log.jsonl, last.pt) on {trainer.device}")
    result = trainer.fit(progress=not args.no_progress, resume=not args.no_resume)
    print(f"step {result['step']}: final student loss {_format(result['loss'])}; checkpoint "
          f"{trainer.checkpoint_path}")
    return 0


def _format(value: float | None) -> str:
    return "n/a (no update run)" if value is None else f"{value:.5f}"


# --------------------------------------------------------------------- reproduce
def _reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    from rsd_mini.tables import add_table_arguments

    parser.add_argument("--preset", default="tiny", choices=["tiny"],
                        help="the tiny reproduction (without --table)")
    parser.add_argument("--out", default="runs/tiny", metavar="DIR", help="runs and metrics")
    parser.add_argument("--figures", default="figures", metavar="DIR", help="where figures go")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--student", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a distillation override (repeatable), e.g. --student train.iterations=50")
    parser.add_argument("overrides", nargs="*", metavar="SECTION.KEY=VALUE",
                        help="teacher config overrides, e.g. train.iterations=100")
    add_table_arguments(parser)


@command("reproduce", "Tiny end-to-end reproduction (teacher, RSD student, metrics, figures), or "
         "with --table N one of the paper's tables beside ours.", _reproduce_arguments)
def reproduce(args: argparse.Namespace) -> int:
    from rsd_mini.reproduce import run_tiny
    from rsd_mini.tables import run_table

    if args.table is not None:
        return run_table(args)
    summary = run_tiny(args.out, args.figures, args.overrides, args.student,
                       progress=not args.no_progress)
    _print_methods(summary)
    print(f"metrics: {args.out}/metrics.json; figures: {args.figures}/tiny_*.png")
    return 0


def _print_methods(summary: dict) -> None:
    print(f"{summary['num_images']} held-out crops (Y-channel PSNR / SSIM, NFE, seconds per image):")
    for name, m in summary["methods"].items():
        print(f"  {name:14s} {m['mean_psnr']:6.2f} dB  {m['mean_ssim']:.4f}  NFE {m['nfe']:2d}  "
              f"{m['seconds_per_image']:.4f} s")
    print(f"student vs teacher wall time: {summary['speedup']:.1f}x faster")


# --------------------------------------------------------------------- ship
def _ship_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", default="runs/tiny", metavar="DIR",
                        help="a finished tiny reproduction (make reproduce) to export")


@command("ship", "Export the tiny teacher and student of a reproduction to data/checkpoints/.",
         _ship_arguments)
def ship(args: argparse.Namespace) -> int:
    from rsd_mini.hub import ship_tiny

    try:
        written = ship_tiny(args.run)
    except FileNotFoundError as error:
        sys.exit(f"rsd_mini: error: {error}")
    for name, path in written.items():
        print(f"{name}: {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


# --------------------------------------------------------------------- figures
def _figures_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--figures", default="figures", metavar="DIR", help="where figures go")
    parser.add_argument("--val-images", type=int, metavar="N", help="evaluate only the first N crops")


@command("figures", "Regenerate figures/tiny_* and the metrics from the shipped checkpoints.",
         _figures_arguments)
def figures(args: argparse.Namespace) -> int:
    from rsd_mini.reproduce import figures_from_shipped

    try:
        summary = figures_from_shipped(args.figures, args.val_images)
    except FileNotFoundError as error:
        sys.exit(f"rsd_mini: error: {error}")
    _print_methods(summary)
    return 0


# --------------------------------------------------------------------- toy
def _toy_arguments(parser: argparse.ArgumentParser) -> None:
    from rsd_mini.toy import add_cli_arguments

    add_cli_arguments(parser)


@command("toy", "RSD on a 2-D problem with a known answer: energy distances to the true conditional.",
         _toy_arguments)
def toy(args: argparse.Namespace) -> int:
    from rsd_mini.toy import main

    return main(args)


# --------------------------------------------------------------------- commands defined elsewhere
def delegate(name: str, help: str, module: str, add_arguments: str, run: str) -> None:
    """Register subcommand ``name`` whose arguments and body are the functions ``add_arguments``
    and ``run`` of ``rsd_mini.<module>``."""
    def target(function: str):
        return getattr(importlib.import_module(f"rsd_mini.{module}"), function)

    COMMANDS[name] = Command(help, lambda parser: target(add_arguments)(parser), lambda args: target(run)(args))


delegate("evaluate", "Metrics of a checkpoint or bicubic on an LR folder (optionally with HR).",
         "evaluate", "add_evaluate_arguments", "run_evaluate")
delegate("upscale", "Super-resolve image files of any size with a checkpoint.",
         "evaluate", "add_upscale_arguments", "run_upscale")
delegate("weights", "List, download and verify the official checkpoints (ResShift, VQ-f4, SinSR, RSD).",
         "weights", "add_weights_arguments", "run_weights")
delegate("data", "List, check and prepare the paper's training and test sets.",
         "prepare", "add_data_arguments", "run_data")
