"""Command line: ``python -m rsd_mini <command> ...`` (also installed as ``rsd-mini``).

Each command is one function registered with :func:`command`, which names it, gives its help
line, a function that adds its arguments and its workload for the thread policy::

    @command("evaluate", "Evaluate a teacher checkpoint.", _evaluate_arguments, _small)
    def evaluate(args: argparse.Namespace) -> int: ...

or a pair of functions of another module registered with :func:`delegate`.

Start-up (issue #13): this module imports only the standard library and
:mod:`rsd_mini.errors`; only the chosen command's arguments are built and every command imports
what it needs when it runs, so ``--help``, ``weights list`` and argument errors start without
torch. Global options (``--threads N``, ``--debug``) go before or after the command.

Errors (issue #12): :func:`main` is the one boundary. An expected failure — a
:class:`rsd_mini.errors.UserError`, a ``ValueError`` of a check, an ``OSError`` on a file, the
NaN stop (``FloatingPointError``), out of memory — prints one line ``rsd_mini: error: ...`` on
stderr and returns 1; argparse's usage errors exit 2; Ctrl-C returns 130. ``--debug`` or
``RSD_MINI_DEBUG=1`` lets the exception through, with its traceback. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from rsd_mini import errors
from rsd_mini.errors import UserError, int_at_least, one_line, remembered_interrupts

#: The folder of the preset YAML files (``rsd_mini.config.PRESET_FILES``), read here without torch.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
EXIT_ERROR, EXIT_INTERRUPTED = 1, 130
#: Environment variable that, set to anything but ``0``, shows tracebacks (as ``--debug`` does).
DEBUG_ENV = "RSD_MINI_DEBUG"
INTERRUPTED = ("rsd_mini: interrupted (Ctrl-C); a training run continues from its last checkpoint "
               "when the same command is run again")

Workload = Callable[[argparse.Namespace], "str | None"]


def _no_compute(args: argparse.Namespace) -> None:
    return None


def _small(args: argparse.Namespace) -> str:
    return "small"


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    #: ``"small"`` / ``"large"`` for :func:`rsd_mini.threads.configure`, None for no compute.
    workload: Workload = _no_compute


#: The subcommands, by name, in the order ``--help`` lists them.
COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None],
            workload: Workload = _no_compute):
    """Register the decorated function as subcommand ``name``."""
    def register(run: Callable[[argparse.Namespace], int | None]):
        COMMANDS[name] = Command(help, add_arguments, run, workload)
        return run
    return register


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line too (exit 2); subcommand parsers inherit it."""

    def error(self, message: str):
        self.exit(2, f"rsd_mini: error: {one_line(message)} (see: python -m {self.prog} --help)\n")


def _thread_count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of threads ≥ 1, got {text!r}")
    return int(text)


def _global_arguments(parser: argparse.ArgumentParser, top: bool) -> None:
    """``--threads`` and ``--debug``; a subcommand's copies do not reset the top level's values."""
    parser.add_argument("--threads", type=_thread_count, metavar="N", default=None if top else argparse.SUPPRESS,
                        help="CPU threads (default: OMP_NUM_THREADS, else 1 for the tiny models and the toy, "
                             "every core for the paper's models)")
    parser.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS,
                        help=f"show the traceback of an error (also {DEBUG_ENV}=1)")


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the arguments of ``commands`` (default: all) are built, so that
    ``--help`` imports no command module."""
    chosen = COMMANDS if commands is None else set(commands)
    parser = _Parser(prog="rsd_mini", description=(
        "rsd-mini: ResShift teachers and RSD one-step students (arXiv 2503.13358)."))
    _global_arguments(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, cmd in COMMANDS.items():
        sub = subparsers.add_parser(name, help=cmd.help, description=cmd.help)
        if name in chosen:
            _global_arguments(sub, top=False)
            cmd.add_arguments(sub)
    return parser


def _chosen_command(argv: list[str]) -> str | None:
    """The command word of ``argv``: the first word that is not a global option or its value."""
    words = iter(argv)
    for word in words:
        if word == "--threads":
            next(words, None)
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m rsd_mini ARGV``; the one error boundary (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        with warnings.catch_warnings(), remembered_interrupts():
            warnings.showwarning = _show_warning
            return _run(argv)
    except KeyboardInterrupt:
        if debug:
            raise
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as stop:  # argparse (exit 0 or 2) or a module's sys.exit("rsd_mini: error: ...")
        if debug or not isinstance(stop.code, str):
            raise
        message = stop.code
    except Exception as error:
        message = expected_message(error)
        if debug or message is None:
            raise
    print(one_line(message if message.startswith("rsd_mini:") else f"rsd_mini: error: {message}"), file=sys.stderr)
    return EXIT_ERROR


def _run(argv: list[str]) -> int:
    chosen = _chosen_command(argv)
    args = build_parser([chosen] if chosen else []).parse_args(argv)
    cmd = COMMANDS[args.command]
    workload = cmd.workload(args)
    if workload is not None:
        from rsd_mini.threads import configure

        configure(workload, args.threads)
    return cmd.run(args) or 0


def expected_message(error: Exception) -> str | None:
    """The message of an expected failure (see the module docstring), None for a bug."""
    if isinstance(error, (UserError, ValueError, FloatingPointError)):
        return str(error) or type(error).__name__
    if isinstance(error, OSError):
        if error.filename is None or error.strerror is None:
            return str(error)
        return f"{error.filename}: {error.strerror}; check the path and its permissions"
    if type(error).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError, without importing torch
        return (f"out of memory ({one_line(str(error))[:200]}); use a smaller --tile, batch or microbatch, "
                "or another --device")
    return None


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"rsd_mini: warning: {one_line(str(message))}", file=sys.stderr)


# --------------------------------------------------------------------- config arguments
def preset_files() -> dict[str, Path]:
    """The presets by name, from the YAML file names of ``configs/`` (``teacher_tiny.yaml`` →
    ``tiny``, ``rsd_tiny.yaml`` → ``rsd-tiny``); a test keeps them equal to
    ``rsd_mini.config.PRESET_FILES``, which needs torch to import."""
    return {path.stem.removeprefix("teacher_").replace("_", "-"): path for path in sorted(CONFIG_DIR.glob("*.yaml"))}


def _config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="tiny", metavar="NAME_OR_YAML",
                        help=f"a preset ({', '.join(preset_files())}) or a YAML file (default: tiny)")
    parser.add_argument("overrides", nargs="*", metavar="SECTION.KEY=VALUE",
                        help="config overrides, e.g. optim.lr=1e-4 unet.channel_mult=[1,2,2]")


def resolve_config(args: argparse.Namespace, extra: list[str] = ()):
    """The config named by ``--config`` with the overrides applied; a UserError on error."""
    from rsd_mini.config import apply_overrides, load_config

    try:
        config = load_config(args.config)
    except (ValueError, TypeError, OSError) as error:
        raise UserError(f"argument --config: {error}") from error
    try:
        return apply_overrides(config, [*args.overrides, *extra])
    except (ValueError, TypeError) as error:
        raise UserError(f"argument SECTION.KEY=VALUE: {error}") from error


def _config_workload(args: argparse.Namespace) -> str:
    """``"large"`` for a config in VQ-f4 latents (the paper's networks), ``"small"`` for pixel
    space (the tiny ones): read from the YAML and ``diffusion.latent=`` overrides, without
    torch, so that the thread policy is set before torch loads."""
    import yaml

    path = preset_files().get(args.config, Path(args.config))
    try:
        latent = (yaml.safe_load(path.read_text()) or {}).get("diffusion", {}).get("latent", True)
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return "small"  # the config's own error comes when it is loaded
    for override in args.overrides:
        if override.replace(" ", "").startswith("diffusion.latent="):
            latent = yaml.safe_load(override.partition("=")[2]) is True
    return "large" if latent is True else "small"


@command("config", "Print a teacher or distillation config (preset or YAML plus overrides) as YAML.", _config_arguments)
def show_config(args: argparse.Namespace) -> int:
    from rsd_mini.config import config_to_yaml

    print(config_to_yaml(resolve_config(args)), end="")
    return 0


# --------------------------------------------------------------------- train-teacher
def _train_teacher_arguments(parser: argparse.ArgumentParser) -> None:
    _config_arguments(parser)
    parser.add_argument("--out", metavar="DIR", help="run folder (overrides train.out_dir)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if DIR/last.pt exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _run_folder(args: argparse.Namespace, config) -> None:
    """Create the run folder and check it is writable, before any model loads."""
    errors.output_folder(config.train.out_dir, "--out" if args.out else "train.out_dir")


@command("train-teacher", "Train a ResShift teacher (RSD_SPEC §1).", _train_teacher_arguments, _config_workload)
def train_teacher(args: argparse.Namespace) -> int:
    from rsd_mini.config import TeacherConfig
    from rsd_mini.train import TeacherTrainer

    config = resolve_config(args, [f"train.out_dir={args.out}"] if args.out else [])
    if not isinstance(config, TeacherConfig):
        raise UserError(f"argument --config: {args.config!r} is a distillation config; use python -m rsd_mini "
                        "distill, or a teacher config (tiny, resshift-v1)")
    device = errors.device(args.device)
    _run_folder(args, config)
    trainer = TeacherTrainer(config, device=device)
    print(f"run: {trainer.out_dir} (config.yaml, log.jsonl, last.pt) on {trainer.device}")
    result = trainer.fit(progress=not args.no_progress, resume=not args.no_resume)
    print(f"step {result['step']}: final loss {_format(result['loss'])}; checkpoint {trainer.checkpoint_path}")
    return 0


# --------------------------------------------------------------------- distill
def _distill_arguments(parser: argparse.ArgumentParser) -> None:
    _train_teacher_arguments(parser)
    parser.set_defaults(config="rsd-tiny")
    parser.add_argument("--teacher", metavar="CKPT",
                        help="teacher checkpoint (overrides distill.teacher, sinsr.teacher or regression.teacher)")


#: The one-step trainers by config section: RSD (RSD_SPEC §4), SinSR (§3), MSE regression.
TRAINERS = {"distill": ("rsd_mini.distill_train", "RSDTrainer"), "sinsr": ("rsd_mini.sinsr", "SinSRTrainer"),
            "regression": ("rsd_mini.regression", "RegressionTrainer")}


@command("distill", "Distil a ResShift teacher into a one-step student: RSD (rsd-tiny, rsd-paper), SinSR "
         "(sinsr-tiny, sinsr-paper) or MSE regression (regression-tiny).", _distill_arguments, _config_workload)
def distill(args: argparse.Namespace) -> int:
    from rsd_mini.config import RUN_TYPES

    config = resolve_config(args, [f"train.out_dir={args.out}"] if args.out else [])
    section = next((name for name, cls in RUN_TYPES.items() if isinstance(config, cls)), None)
    if section is None:
        raise UserError(f"argument --config: {args.config!r} is a teacher config; expected a distillation "
                        "config (rsd-tiny, rsd-paper, sinsr-tiny, sinsr-paper, regression-tiny or a YAML "
                        "file with a distill, sinsr or regression section)")
    if args.teacher:
        config = resolve_config(args, [f"train.out_dir={args.out}"] * bool(args.out) + [f"{section}.teacher={args.teacher}"])
    device = errors.device(args.device)
    _run_folder(args, config)
    module, name = TRAINERS[section]
    try:
        trainer = getattr(importlib.import_module(module), name)(config, device=device)
    except RuntimeError as error:  # torch's load_state_dict: the weights do not fit the network
        flag = "--teacher" if args.teacher else f"{section}.teacher"
        raise UserError(f"argument {flag}: {getattr(config, section).teacher!r} does not fit the config's "
                        f"network ({one_line(str(error))[:300]}); give the config it was trained with") from error
    print(f"run: {trainer.out_dir} (config.yaml, log.jsonl, last.pt) on {trainer.device}")
    result = trainer.fit(progress=not args.no_progress, resume=not args.no_resume)
    print(f"step {result['step']}: final student loss {_format(result['loss'])}; checkpoint "
          f"{trainer.checkpoint_path}")
    return 0


def _format(value: float | None) -> str:
    return "n/a (no update run)" if value is None else f"{value:.5f}"


# --------------------------------------------------------------------- reproduce
def _reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    from rsd_mini.fullscale.tables import add_table_arguments

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


def _reproduce_workload(args: argparse.Namespace) -> str:
    return "small" if args.table is None else "large"


@command("reproduce", "Tiny end-to-end reproduction (teacher, RSD student, metrics, figures), or "
         "with --table N one of the paper's tables beside ours.", _reproduce_arguments, _reproduce_workload)
def reproduce(args: argparse.Namespace) -> int:
    from rsd_mini.fullscale.tables import run_table
    from rsd_mini.reproduce import run_tiny

    if args.table is not None:
        args.device = errors.device(args.device)
        if args.json is not None:
            (errors.output_file if args.json.suffix == ".json" else errors.output_folder)(args.json, "--json")
        return run_table(args)
    errors.output_folder(args.out, "--out")
    errors.output_folder(args.figures, "--figures")
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
         _ship_arguments, _small)
def ship(args: argparse.Namespace) -> int:
    from rsd_mini.hub import ship_tiny

    try:
        written = ship_tiny(args.run)
    except FileNotFoundError as error:
        raise UserError(f"argument --run: {error}") from error
    for name, path in written.items():
        print(f"{name}: {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


# --------------------------------------------------------------------- figures
def _figures_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--figures", default="figures", metavar="DIR", help="where figures go")
    parser.add_argument("--val-images", type=int, metavar="N", help="evaluate only the first N crops")


@command("figures", "Regenerate figures/tiny_* and the metrics from the shipped checkpoints.",
         _figures_arguments, _small)
def figures(args: argparse.Namespace) -> int:
    from rsd_mini.reproduce import figures_from_shipped

    errors.output_folder(args.figures, "--figures")
    summary = figures_from_shipped(args.figures, args.val_images)
    _print_methods(summary)
    return 0


# --------------------------------------------------------------------- toy
def _toy_arguments(parser: argparse.ArgumentParser) -> None:
    from rsd_mini.toy import add_cli_arguments

    add_cli_arguments(parser)


@command("toy", "RSD on a 2-D problem with a known answer: energy distances to the true conditional.",
         _toy_arguments, _small)
def toy(args: argparse.Namespace) -> int:
    from rsd_mini.toy import main

    if args.json is not None:
        errors.output_file(args.json, "--json")
    return main(args)


# --------------------------------------------------------------------- commands defined elsewhere
def delegate(name: str, help: str, module: str, add_arguments: str, run: str,
             workload: Workload = _no_compute) -> None:
    """Register subcommand ``name`` whose arguments and body are the functions ``add_arguments``
    and ``run`` of ``rsd_mini.<module>``, imported when the command is chosen."""
    def target(function: str):
        return getattr(importlib.import_module(f"rsd_mini.{module}"), function)

    COMMANDS[name] = Command(help, lambda parser: target(add_arguments)(parser), lambda args: target(run)(args),
                             workload)


# --------------------------------------------------------------------- evaluate, upscale
#: The shipped models present (``rsd_mini.hub.SHIPPED``), from the file names of data/checkpoints/
#: (``tiny_teacher.pt`` → ``tiny-teacher``), and the baselines without a network
#: (``rsd_mini.evaluate.METHODS``); tests keep both equal to their sources, which import torch.
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "checkpoints"
METHODS = ("bicubic",)


def shipped_names() -> list[str]:
    return sorted(path.stem.replace("_", "-") for path in SHIPPED_DIR.glob("*.pt"))


def _checkpoint_argument(parser, required: bool) -> None:
    parser.add_argument("--checkpoint", metavar="CKPT", required=required,
                        help=f"a shipped model ({', '.join(shipped_names())}), an official one from the weights "
                             "folder (rsd, resshift-v1, sinsr-v2, ...) or a checkpoint path")


def _sampling_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int_at_least(1), metavar="N",
                        help="teacher network calls, respaced (default: all T); a student makes 1")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed, the same for every image (default 0)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--tile", type=int_at_least(0), metavar="PX",
                        help="tile LR images larger than PX pixels, 0 = never (default: the model's, 512 for the "
                             "official latent models as their sampler, 64 for the tiny ones)")
    parser.add_argument("--overlap", type=int_at_least(0), metavar="PX",
                        help="LR pixels shared by neighbouring tiles, averaged (default: the model's, 64 or 16)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    _checkpoint_argument(which, required=False)
    which.add_argument("--method", choices=METHODS, help="a baseline without a network")
    parser.add_argument("--lq", required=True, type=Path, metavar="DIR", help="folder of LR images")
    parser.add_argument("--gt", type=Path, metavar="DIR",
                        help="folder of HR images with the same names (optional: without it, no PSNR/SSIM)")
    parser.add_argument("--json", required=True, type=Path, metavar="OUT", help="where the metrics go")
    parser.add_argument("--save", type=Path, metavar="DIR", help="also write the outputs as DIR/NAME.png")
    parser.add_argument("--limit", type=int_at_least(1), metavar="N", help="only the first N images by name")
    parser.add_argument("--scale", type=int_at_least(1), metavar="S", help="bicubic's factor (default 4)")
    parser.add_argument("--perceptual", nargs="+", default=[], metavar="NAME",
                        help="pyiqa metrics too, e.g. lpips musiq (rsd_mini.metrics.PERCEPTUAL); needs pip "
                             "install pyiqa")
    _sampling_arguments(parser)


def _checkpoint_workload(args: argparse.Namespace) -> str:
    """``"large"`` for the official (VQ-f4 latent) models by registry name, else ``"small"``."""
    from rsd_mini.fullscale.weights import REGISTRY

    spec = REGISTRY.get(getattr(args, "checkpoint", None) or "")
    return "large" if spec is not None and spec.kind == "unet" else "small"


@command("evaluate", "Metrics of a checkpoint or bicubic on an LR folder (optionally with HR).",
         _evaluate_arguments, _checkpoint_workload)
def evaluate(args: argparse.Namespace) -> int:
    from rsd_mini.evaluate import run_evaluate

    return run_evaluate(args)


def _upscale_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE",
                        help="image files, or folders of them (not searched recursively)")
    _checkpoint_argument(parser, required=True)
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="writes DIR/STEM_x4.png per input")
    _sampling_arguments(parser)


@command("upscale", "Super-resolve image files of any size with a checkpoint.", _upscale_arguments,
         _checkpoint_workload)
def upscale(args: argparse.Namespace) -> int:
    from rsd_mini.evaluate import run_upscale

    return run_upscale(args)


delegate("compare", "Compare the one-step methods distilled from the tiny teacher (RSD, VSD, SinSR, "
         "regression, ...): distances to the teacher, metrics, figures.", "compare", "add_compare_arguments",
         "run_compare", _small)
delegate("demo", "Serve the teacher-vs-student comparison page (Voila) on 127.0.0.1, with image upload.",
         "demo", "add_demo_arguments", "run_demo", _small)
delegate("weights", "List, download and verify the official checkpoints (ResShift, VQ-f4, SinSR, RSD).",
         "fullscale.weights_command", "add_weights_arguments", "run_weights")
delegate("data", "List, check and prepare the paper's training and test sets.",
         "fullscale.prepare", "add_data_arguments", "run_data")
