"""GPU smoke test and benchmark of the full-scale configuration (issue #5, item 6).

Fits one call of a few minutes on one GPU. With the paper's v1 network (118.6 M parameters) on
VQ-f4-shaped latents (64² for a 64² LR image, i.e. 256² HR), it measures:

1. teacher forward+backward at the paper's micro-batch (8);
2. one RSD iteration at that micro-batch: a fake update and a student update (the objective of
   ``rsd_mini.distill``, latent-space input scaling, teacher frozen);
3. the VQ-f4 encoding of one training micro-batch (256² HR and its upsampled LR);
4. inference on one 64² LR image through the whole pipeline of the official sampler
   (:class:`rsd_mini.fullscale.latent.LatentSR`: encode, UNet, decode): the student's single call against
   the teacher's 15 calls;
5. optionally (``--tile 512``) both on one 512² LR tile, the official tiling unit.

Weights are synthetic (same shapes and cost as the official files). It prints throughput, peak
memory and the teacher/student time ratio, and writes them as JSON (``--json``).
``--config tiny --device cpu`` runs the same code path on a CPU in seconds (with a small VQ).

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
from rsd_mini.fullscale.autoencoder import VQAutoencoder, VQConfig
from rsd_mini.diffusion import ResShift
from rsd_mini.fullscale.latent import LatentSR, encode_latents
from rsd_mini.unet import SwinUNet, count_parameters, unet_preset

#: The autoencoder of each --config: the official VQ-f4, or a small f4 one for CPU checks.
VQ_CONFIGS = {"v1": VQConfig(), "tiny": VQConfig(n_embed=64, ch=32, ch_mult=(1, 1, 2), num_res_blocks=1)}


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
    parser.add_argument("--tile", type=int, default=0, help="also time one LR tile of this size (official: 512)")
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

    vq = VQAutoencoder(VQ_CONFIGS[args.config]).to(device).eval().requires_grad_(False)
    hr = torch.rand(b, 3, 4 * s, 4 * s, device=device) * 2 - 1

    def vq_encode_batch():
        with torch.no_grad(), autocast:
            return encode_latents(vq, hr, lq)

    for name, fn in (("teacher_fwd_bwd", teacher_step), ("rsd_iteration", rsd_iteration),
                     ("vq_encode_batch", vq_encode_batch)):
        reset_peak(device)
        seconds, _ = timed(fn, device, args.repeats)
        result[name] = dict(seconds=seconds, samples_per_second=b / seconds, peak_memory_mb=peak_memory_mb(device))

    models = {kind: LatentSR(net.eval(), process, kind, noise_channels=channels, autoencoder=vq)
              for kind, net, channels in (("student", student, 1), ("teacher", teacher, 0))}
    for label, size in (("lr", s), *((("tile", args.tile),) if args.tile else ())):
        lq1 = torch.rand(1, 3, size, size, device=device) * 2 - 1
        timings = {}
        for kind, repeats in (("student", args.repeats), ("teacher", max(1, args.repeats // 2))):
            reset_peak(device)
            with autocast:
                seconds, _ = timed(lambda: models[kind].sr(lq1, generator), device, repeats)
            timings[kind] = (seconds, peak_memory_mb(device))
        result[f"inference_{label}"] = dict(
            lr_size=size, student_seconds=timings["student"][0], teacher_seconds=timings["teacher"][0],
            ratio=timings["teacher"][0] / timings["student"][0], student_peak_memory_mb=timings["student"][1],
            teacher_peak_memory_mb=timings["teacher"][1])
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
