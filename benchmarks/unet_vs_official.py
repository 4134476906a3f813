"""Same function and speed as the official UNetModelSwin (issue #2 acceptance check).

Needs a checkout of the official ResShift code (not part of this repository), e.g. one fetched
with ``git clone https://github.com/zsyOAOA/ResShift``. The official model is built from its
own YAML params, its random weights are loaded into ``rsd_mini.fullscale.official.load_unet``, and both
are run on the same input: the script prints the max output difference (absolute and relative
to the largest output) and the median wall and process-CPU time of a forward+backward of each
(ours also in channels-last memory format), interleaved, with their ratios. One thread by
default (``--threads``): on a shared machine that keeps the comparison about the code.

    python benchmarks/unet_vs_official.py --official-repo ../ResShift --config v1 --batch 4
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from rsd_mini.fullscale.official import load_unet, official_state_dict
from rsd_mini.unet import UNET_PRESETS

#: UNetConfig fields that only rsd-mini has (the official model has no lq residual and no
#: activation-checkpointing switch); the comparison runs both models without them.
RSD_MINI_ONLY = ("lq_residual", "checkpointing")


def official_params(name: str) -> dict:
    """The official YAML params (ResShift convention: in_channels 3 + lq_size) of a preset."""
    config = {k: v for k, v in UNET_PRESETS[name].to_dict().items() if k not in RSD_MINI_ONLY}
    config.update(in_channels=3, lq_size=config["image_size"], dims=2, use_fp16=False,
                  resblock_updown=False)
    return config


def build_official(repo: Path, params: dict) -> torch.nn.Module:
    sys.path.insert(0, str(repo))
    from models.unet import UNetModelSwin  # noqa: E402  (official code, run for comparison)
    return UNetModelSwin(**params)


def time_step(model, x, t, lq) -> tuple[float, float]:
    """Wall and process-CPU seconds of one forward+backward. On a shared machine the CPU time
    (the work this process did) is the steadier number; with one thread the two agree when the
    machine is otherwise idle."""
    model.zero_grad(set_to_none=True)
    wall, cpu = time.perf_counter(), time.process_time()
    model(x, t, lq=lq).square().mean().backward()
    return time.perf_counter() - wall, time.process_time() - cpu


def without_mkldnn(function, *args):
    """``function(*args)`` with oneDNN convolutions switched off."""
    with torch.backends.mkldnn.flags(enabled=False):
        return function(*args)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-repo", type=Path, required=True)
    parser.add_argument("--config", default="v1", choices=sorted(UNET_PRESETS))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=None, help="input size (default image_size)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-channels-last", action="store_true",
                        help="skip the channels-last run of ours (a third less time)")
    parser.add_argument("--compile", action="store_true",
                        help="also time ours under torch.compile (its compile time is printed apart)")
    parser.add_argument("--no-mkldnn", action="store_true",
                        help="also time ours with oneDNN off (torch's own im2col + BLAS convolutions)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    params = official_params(args.config)
    official = build_official(args.official_repo, params)
    for p in official.parameters():  # the official init zeroes some convs: randomise all
        torch.nn.init.normal_(p, std=0.02)
    ours = load_unet(official.state_dict(), params)
    assert official_state_dict(ours).keys() == official.state_dict().keys()
    official.train(), ours.train()

    size = args.size or params["image_size"]
    x = torch.randn(args.batch, 3, size, size)
    lq = torch.randn(args.batch, 3, size, size)
    t = torch.randint(0, 15, (args.batch,))
    reference = official(x, t, lq=lq).detach()
    outputs = [ours(x, t, lq=lq).detach()]  # the training path (timed below)
    with torch.no_grad():
        outputs.append(ours(x, t, lq=lq))  # the inference path (SDPA attention)
    max_diff = max((reference - out).abs().max().item() for out in outputs)

    runs = {"official": lambda: time_step(official, x, t, lq),
            "ours": lambda: time_step(ours, x, t, lq)}
    if not args.no_channels_last:
        ours_cl = copy.deepcopy(ours).to(memory_format=torch.channels_last)
        x_cl, lq_cl = (v.contiguous(memory_format=torch.channels_last) for v in (x, lq))
        runs["ours_channels_last"] = lambda: time_step(ours_cl, x_cl, t, lq_cl)
    compile_seconds = None
    if args.compile:
        compiled = torch.compile(ours)
        start = time.perf_counter()
        time_step(compiled, x, t, lq)  # compiles the forward and the backward
        compile_seconds = time.perf_counter() - start
        with torch.no_grad():
            max_diff = max(max_diff, (reference - compiled(x, t, lq=lq)).abs().max().item())
        runs["ours_compiled"] = lambda: time_step(compiled, x, t, lq)
    if args.no_mkldnn:
        runs["ours_no_mkldnn"] = lambda: without_mkldnn(time_step, ours, x, t, lq)
    times = {name: [] for name in runs}
    for run in runs.values():  # warm-up
        run()
    for _ in range(args.repeats):  # interleave so all see the same machine state
        for name, run in runs.items():
            times[name].append(run())
    result = dict(config=args.config, batch=args.batch, size=size, threads=args.threads,
                  repeats=args.repeats, max_abs_diff=max_diff,
                  max_relative_diff=max_diff / reference.abs().max().item(), compile_seconds=compile_seconds)
    for clock, index in (("s", 0), ("cpu_s", 1)):
        median = {name: statistics.median(step[index] for step in steps)
                  for name, steps in times.items()}
        result.update({f"{name}_{clock}": value for name, value in median.items()})
        suffix = "" if clock == "s" else "_cpu"
        for name in runs:
            if name != "official":
                result[f"speedup{name.removeprefix('ours')}{suffix}"] = median["official"] / median[name]
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
