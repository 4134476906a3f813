"""Same function and speed as the official UNetModelSwin (issue #2 acceptance check).

Needs a checkout of the official ResShift code (not part of this repository), e.g. one fetched
with ``git clone https://github.com/zsyOAOA/ResShift``. The official model is built from its
own YAML params, its random weights are loaded into ``rsd_mini.official.load_unet``, and both
are run on the same input: the script prints the max output difference and the
forward+backward time of each (ours also in channels-last memory format), interleaved,
with their ratios.

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

from rsd_mini.official import load_unet, official_state_dict
from rsd_mini.unet import UNET_PRESETS

# The official YAML params (ResShift convention: in_channels 3 + lq_size) for each preset.
def official_params(name: str) -> dict:
    config = UNET_PRESETS[name].to_dict()
    config.update(in_channels=3, lq_size=config["image_size"], dims=2, use_fp16=False,
                  resblock_updown=False)
    return config


def build_official(repo: Path, params: dict) -> torch.nn.Module:
    sys.path.insert(0, str(repo))
    from models.unet import UNetModelSwin  # noqa: E402  (official code, run for comparison)
    return UNetModelSwin(**params)


def time_step(model, x, t, lq, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        model(x, t, lq=lq).square().mean().backward()
        times.append(time.perf_counter() - start)
    return times


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-repo", type=Path, required=True)
    parser.add_argument("--config", default="v1", choices=sorted(UNET_PRESETS))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=None, help="input size (default image_size)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
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
    with torch.no_grad():
        max_diff = (official(x, t, lq=lq) - ours(x, t, lq=lq)).abs().max().item()

    ours_cl = copy.deepcopy(ours).to(memory_format=torch.channels_last)
    x_cl, lq_cl = (v.contiguous(memory_format=torch.channels_last) for v in (x, lq))
    runs = {"official_s": lambda: time_step(official, x, t, lq, 1),
            "ours_s": lambda: time_step(ours, x, t, lq, 1),
            "ours_channels_last_s": lambda: time_step(ours_cl, x_cl, t, lq_cl, 1)}
    times = {name: [] for name in runs}
    for run in runs.values():  # warm-up
        run()
    for _ in range(args.repeats):  # interleave so all see the same machine state
        for name, run in runs.items():
            times[name] += run()
    result = dict(config=args.config, batch=args.batch, size=size, threads=args.threads,
                  max_abs_diff=max_diff, **{k: statistics.median(v) for k, v in times.items()})
    result["speedup"] = result["official_s"] / result["ours_s"]
    result["speedup_channels_last"] = result["official_s"] / result["ours_channels_last_s"]
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
