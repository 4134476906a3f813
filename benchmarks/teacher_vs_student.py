"""Wall time per image of the shipped tiny teacher (T calls) and RSD student (1 call), and their
ratio, measured in one run on the same LR crops (issue #4).

    python benchmarks/teacher_vs_student.py [--size 16] [--images 8] [--threads 2]

``--size`` is the LR side (16 → 64² output, the training crops). Each model runs every image
once as warm-up, then ``--repeats`` timed passes; the median pass is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from rsd_mini import hub
from rsd_mini.srmodel import SRModel


def seconds_per_image(model: SRModel, images: torch.Tensor, repeats: int) -> float:
    passes = []
    for repeat in range(repeats + 1):
        start = time.perf_counter()
        for i, lq in enumerate(images):
            model.sr(lq[None], torch.Generator().manual_seed(i))
        if repeat:  # the first pass is a warm-up
            passes.append((time.perf_counter() - start) / len(images))
    return statistics.median(passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    teacher, student = hub.load("tiny-teacher"), hub.load("tiny-student")
    images = torch.rand(args.images, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    t_teacher = seconds_per_image(teacher, images, args.repeats)
    t_student = seconds_per_image(student, images, args.repeats)
    print(json.dumps(dict(lr_size=args.size, threads=args.threads, teacher_nfe=teacher.nfe, student_nfe=student.nfe,
                          teacher_seconds_per_image=t_teacher, student_seconds_per_image=t_student,
                          ratio=t_teacher / t_student), indent=1))


if __name__ == "__main__":
    main()
