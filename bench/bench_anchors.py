"""Batched anchor labelling: d2lcv.ops.label_anchors vs d2l's multibox_target (a loop over images).

SSD-like anchors: feature maps 32, 16, 8, 4 and 1 cells a side with 4 anchors per cell
(5,444 anchors); a batch of 32 images with 8 ground-truth boxes each (d2l mislabels
padding, so every image gets real boxes). Checks that labels, masks and offsets agree and
prints the CPU time of each (best of --repeats) and the speed-up (goal: >= 10x).
Run: python bench/bench_anchors.py [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse

import torch
from d2lcv.utils import best_time
from d2l import torch as d2l

from d2lcv.ops import generate_anchors, label_anchors



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--boxes", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [(0.2, 0.272), (0.37, 0.447), (0.54, 0.619), (0.71, 0.79), (0.88, 0.961)]
    anchors = torch.cat([generate_anchors(n, n, s, [1, 2, 0.5]) for n, s in zip((32, 16, 8, 4, 1), sizes)])
    g = torch.Generator().manual_seed(0)
    B, G = args.batch, args.boxes
    xy = torch.rand(B, G, 2, generator=g) * 0.7
    boxes = torch.cat([xy, xy + torch.rand(B, G, 2, generator=g) * 0.3 + 0.02], -1)
    classes = torch.randint(0, 5, (B, G), generator=g)
    d2l_labels = torch.cat([classes[..., None].float(), boxes], -1)  # d2l: [B, G, 5], class first

    t_d2l, (o1, m1, l1) = best_time(lambda: d2l.multibox_target(anchors[None], d2l_labels), args.repeats)
    t_us, (l2, o2, m2) = best_time(lambda: label_anchors(anchors, boxes, classes), args.repeats)
    same = torch.equal(l1, l2) and torch.equal(m1, m2.reshape(B, -1)) and torch.allclose(o1, o2.reshape(B, -1), atol=1e-3)
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU process time, best of {args.repeats}")
    print(f"{B} images x {len(anchors)} anchors x {G} boxes: positives per image {float((l2 > 0).sum(1).float().mean()):.1f}")
    print(f"d2l.multibox_target      {t_d2l:8.4f} s")
    print(f"d2lcv.label_anchors      {t_us:8.4f} s")
    print(f"speed-up                 {t_d2l / t_us:8.1f} x   same labels, masks and offsets: {same}")


if __name__ == "__main__":
    main()
