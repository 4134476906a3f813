"""Teacher training-step time (ResShift loss, forward + backward + AdamW) per UNet preset.

    python benchmarks/train_step.py --presets tiny v1 --batch 4 --size 64

Prints, per preset, the parameter count and the median seconds per step in the default and the
channels-last memory format (measured in the same run, so their ratio is meaningful).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from rsd_mini.diffusion import ResShift
from rsd_mini.unet import SwinUNet, count_parameters, unet_preset


def seconds_per_step(model, process, batch: int, size: int, repeats: int, channels_last: bool) -> float:
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(batch, 3, size, size, generator=g).contiguous(memory_format=memory_format)
    y = torch.randn(batch, 3, size, size, generator=g).contiguous(memory_format=memory_format)
    times = []
    for _ in range(repeats + 1):  # the first step warms up allocators and kernels
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        process.training_loss(model, x0, y, generator=g).mean().backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "v1"])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    process = ResShift.from_preset("resshift-v1")
    rows = []
    for name in args.presets:
        torch.manual_seed(0)
        model = SwinUNet(unet_preset(name))
        default = seconds_per_step(model, process, args.batch, args.size, args.repeats, False)
        channels_last = seconds_per_step(model, process, args.batch, args.size, args.repeats, True)
        rows.append(dict(preset=name, parameters=count_parameters(model), batch=args.batch,
                         size=args.size, threads=args.threads, seconds_per_step=default,
                         seconds_per_step_channels_last=channels_last,
                         channels_last_speedup=default / channels_last))
        print(json.dumps(rows[-1]))
    return rows


if __name__ == "__main__":
    main()
