"""d2lcv.ops.nms (pure torch, blocked) vs torchvision.ops.nms (C++) on the CPU.

Random boxes in a 1000 x 1000 image (sides 5..105 px, so many overlap), scores uniform,
IoU threshold 0.5; 1k, 5k and 20k boxes. Checks that both keep the same indices and
prints the time of each (best of --repeats, CPU process time) and the ratio ours / torchvision
(goal: <= 3). Also batched_nms with 20 classes.
Run: python bench/bench_nms.py [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse

import torch
import torchvision.ops as tvops
from d2lcv.utils import best_time

from d2lcv.ops import batched_nms, nms



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU process time, best of {args.repeats}")
    print(f"{'op':>12} {'boxes':>6} {'kept':>6} {'torchvision s':>14} {'d2lcv s':>9} {'ratio':>6} same")
    for n in (1_000, 5_000, 20_000):
        xy = torch.rand(n, 2, generator=g) * 1000
        boxes = torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 100 + 5], 1)
        scores = torch.rand(n, generator=g)
        classes = torch.randint(0, 20, (n,), generator=g)
        for name, ours, theirs in (
            ("nms", lambda: nms(boxes, scores, 0.5), lambda: tvops.nms(boxes, scores, 0.5)),
            ("batched_nms", lambda: batched_nms(boxes, scores, classes, 0.5),
             lambda: tvops.batched_nms(boxes, scores, classes, 0.5)),
        ):
            t_tv, k_tv = best_time(theirs, args.repeats)
            t_us, k_us = best_time(ours, args.repeats)
            same = torch.equal(k_tv.sort().values, k_us.sort().values)
            print(f"{name:>12} {n:>6} {len(k_us):>6} {t_tv:>14.4f} {t_us:>9.4f} {t_us / t_tv:>6.2f} {same}")


if __name__ == "__main__":
    main()
