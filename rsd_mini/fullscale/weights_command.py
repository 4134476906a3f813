"""``python -m rsd_mini weights list | download NAME... | verify [NAME...]``: the command line
of :mod:`rsd_mini.fullscale.weights`. ``verify`` also opens each file and compares its tensors
with the network it should hold (:func:`rsd_mini.fullscale.official.check_contents`); that import
is deferred so that ``weights list`` starts without torch."""

from __future__ import annotations

import argparse
import logging
import sys

from rsd_mini.fullscale.weights import (ENV_VAR, REGISTRY, DownloadError, WeightsIntegrityError, _check_file,
                                        _resolve_dir, download, get_spec, sha256_of)


def add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    """``weights list``, ``weights download NAME...`` and ``weights verify [NAME...]``, each
    with ``--weights-dir``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--weights-dir", metavar="DIR", default=None,
                        help=f"weights folder (default: ${ENV_VAR}, else ~/.cache/rsd-mini/weights)")
    actions = parser.add_subparsers(dest="weights_action", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[common], help="the registry: name, present/absent, size, licence")
    fetch = actions.add_parser("download", parents=[common], help="download, verify and place files")
    fetch.add_argument("names", nargs="+", metavar="NAME", help=f"one of {', '.join(REGISTRY)}")
    fetch.add_argument("--timeout", type=float, default=60, help="seconds per socket operation")
    fetch.add_argument("--quiet", action="store_true", help="no progress display")
    check = actions.add_parser("verify", parents=[common], help="check sizes and sha256 of present files")
    check.add_argument("names", nargs="*", metavar="NAME", help="default: every present file")


def run_weights(args: argparse.Namespace) -> int:
    """Run the ``weights`` command parsed by :func:`add_weights_arguments`; 0 on success."""
    run = {"list": _list_weights, "download": _download_weights, "verify": _verify_weights}
    try:
        for name in getattr(args, "names", []):
            get_spec(name)
    except ValueError as error:
        print(f"rsd_mini weights: error: {error}", file=sys.stderr)
        return 2
    return run[args.weights_action](args)


def _human_size(size: int | None) -> str:
    return "?" if size is None else f"{size / 1e6:.1f} MB"


def _list_weights(args: argparse.Namespace) -> int:
    directory = _resolve_dir(args.weights_dir)
    print(f"weights folder: {directory}")
    rows = [("name", "status", "size", "licence")]
    for spec in REGISTRY.values():
        path = directory / spec.filename
        present = path.is_file()
        size = path.stat().st_size if present else spec.size
        rows.append((spec.name, "present" if present else "absent", _human_size(size), spec.licence))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    return 0


def _download_weights(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    failed = 0
    for name in args.names:
        try:
            print(f"{name}: {download(name, args.weights_dir, not args.quiet, args.timeout)}")
        except (DownloadError, WeightsIntegrityError) as error:
            print(f"{name}: error: {error}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def _verify_weights(args: argparse.Namespace) -> int:
    from rsd_mini.fullscale.official import check_contents

    directory = _resolve_dir(args.weights_dir)
    names = args.names or [s.name for s in REGISTRY.values() if (directory / s.filename).is_file()]
    if not names:
        print(f"no weights in {directory}")
    failed = 0
    for name in names:
        spec = REGISTRY[name]
        path = directory / spec.filename
        if not path.is_file():
            print(f"{name}: absent ({path})")
            failed += 1
            continue
        try:
            digest = _check_file(spec, path, directory)
            tensors = check_contents(spec, path)
        except WeightsIntegrityError as error:
            print(f"{name}: MISMATCH: {error}")
            failed += 1
            continue
        contents = f"{tensors} tensors of the {spec.kind} as expected"
        print(f"{name}: ok (sha256 {digest}; {contents})" if digest else
              f"{name}: unverified (no published or recorded checksum; sha256 {sha256_of(path)}; {contents})")
    return 1 if failed else 0
