"""GPU smoke test and benchmark of the full-scale configuration (issue #5, item 6).

Fits one call of a few minutes on one GPU. With the paper's v1 network (118.6 M parameters) on
VQ-f4-shaped latents (64² for a 64² LR image, i.e. 256² HR), it measures:

1. teacher forward+backward at the paper's micro-batch (8);
2. one RSD iteration at that micro-batch: a fake update and a student update (the objective of
   ``rsd_mini.distill``, latent-space input scaling, teacher frozen);
3. inference on one 64² LR: the student's single call against the teacher's 15 calls;
4. optionally (``--tile``) both on one 512² LR tile (latent 512²/4 per side is the official
   tiling unit; here the network runs on a latent of the tile's LR size).

It prints throughput, peak memory and the teacher/student time ratio, and writes them as JSON
(``--json``). The VQ-f4 encoder/decoder are not included (issue #5); their cost is small next to
15 UNet calls. ``--config tiny --device cpu`` runs the same code path on a CPU in seconds.

    python benchmarks/gpu_smoke.py --json gpu_smoke.json            # on the GPU machine
    python benchmarks/gpu_smoke.py --config tiny --device cpu --size 64 --microbatch 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from rsd_mini import distill
from rsd_mini.diffusion import ResShift
from rsd_mini.unet import SwinUNet, count_parameters, unet_preset


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> tuple[float, object]:
    """Mean seconds of ``fn()`` over ``repeats`` runs after one warm-up run."""
    out = fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats, out


def peak_memory_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="v1", choices=["v1", "tiny"], help="UNet preset")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--microbatch", type=int, default=8, help="the paper's micro-batch: 8")
    parser.add_argument("--size", type=int, default=64, help="latent size of a 64² LR image: 64")
    parser.add_argument("--tile", type=int, default=0, help="also time a tile of this latent size (e.g. 512)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bf16", action="store_true", help="autocast the UNet to bfloat16")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    config = unet_preset(args.config, image_size=args.size)
    teacher = distill.copy_frozen(SwinUNet(config).to(device))
    for p in teacher.parameters():  # off the zero-initialised output of the tiny preset
        p.data.add_(0.01 * torch.randn_like(p))
    student = distill.add_noise_channels(teacher).requires_grad_(True).train()
    fake = distill.copy_frozen(teacher).requires_grad_(True).train()
    process = ResShift.from_preset("resshift-v1")
    generator = torch.Generator(device=device).manual_seed(0)
    b, s = args.microbatch, args.size
    z0, zy = torch.randn(b, 3, s, s, device=device), torch.randn(b, 3, s, s, device=device)
    lq = torch.rand(b, 3, s, s, device=device) * 2 - 1
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)
    result = dict(device=str(torch.cuda.get_device_name(device) if device.type == "cuda" else device),
                  config=args.config, parameters=count_parameters(teacher), microbatch=b, latent_size=s,
                  bf16=args.bf16)

    def teacher_step():
        trainable = teacher.requires_grad_(True)
        with autocast:
            loss = process.training_loss(trainable, z0, zy, lq=lq, generator=generator).mean()
        loss.backward()
        trainable.zero_grad(set_to_none=True)
        teacher.requires_grad_(False)

    def rsd_iteration():
        with torch.no_grad(), autocast:
            x0_hat, _ = distill.student_predict(process, student, z0, zy, lq, (3, 7, 10, 14), 1, generator)
        with autocast:
            distill.fake_loss(process, fake, x0_hat.float(), zy, lq, generator).mean().backward()
        fake.zero_grad(set_to_none=True)
        with autocast:
            x0_hat, _ = distill.student_predict(process, student, z0, zy, lq, (3, 7, 10, 14), 1, generator)
            loss = distill.student_loss(process, teacher, fake, x0_hat, zy, lq, generator).loss.mean()
        loss.backward()
        student.zero_grad(set_to_none=True)

    for name, fn in (("teacher_fwd_bwd", teacher_step), ("rsd_iteration", rsd_iteration)):
        reset_peak(device)
        seconds, _ = timed(fn, device, args.repeats)
        result[name] = dict(seconds=seconds, samples_per_second=b / seconds, peak_memory_mb=peak_memory_mb(device))

    for label, size in (("lr64", s), *((("tile", args.tile),) if args.tile else ())):
        zy1, lq1 = torch.randn(1, 3, size, size, device=device), torch.rand(1, 3, size, size, device=device)
        with torch.no_grad(), autocast:
            reset_peak(device)
            t_student, _ = timed(lambda: distill.one_step_sample(process, student, zy1, lq1, 1, generator), device,
                                 args.repeats)
            mem_student = peak_memory_mb(device)
            reset_peak(device)
            t_teacher, _ = timed(lambda: process.sample(teacher, zy1, lq1, generator=generator), device,
                                 max(1, args.repeats // 2))
        result[f"inference_{label}"] = dict(latent_size=size, student_seconds=t_student, teacher_seconds=t_teacher,
                                            ratio=t_teacher / t_student, student_peak_memory_mb=mem_student,
                                            teacher_peak_memory_mb=peak_memory_mb(device))
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
