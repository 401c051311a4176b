"""YOLO's decoder + NMS (d2lcv.models.detection.yolo_predict) vs SSD's
(d2lcv.models.detection.predict).

Both on the harder emoji set's shapes: 192 x 192 images, 20 classes, a batch of --batch
images. YOLO v3-style: three grids (24, 12, 6) x 3 anchors = 2,268 priors, scores
sigmoid(objectness) * sigmoid(class); SSD (the book's): the same grids x 4 anchors =
3,024 anchors, softmax scores over 21 classes. The network outputs are random, drawn so
that in both about 1.2% of the (box, class) pairs score above the threshold 0.01 (as
after some training; an untrained SSD would put every pair above it). Each path: decode
the boxes, score every class, then per image the thresholding and class-wise NMS (0.45)
of the book. Prints the time of each (best of --repeats, CPU process time) and the ratio
SSD / YOLO.
Run: python bench/bench_yolo.py [--threads 1] [--repeats 3] [--batch 32]
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor, nn

from d2lcv.models.detection import predict, yolo_predict
from d2lcv.ops import generate_anchors, yolo_priors, yolo_v3_decode
from d2lcv.utils import best_time


class Fixed(nn.Module):
    """A stand-in network that returns fixed outputs (so only decoding and NMS are
    timed)."""

    def __init__(self, outputs: tuple[Tensor, ...]) -> None:
        super().__init__()
        self.outputs = outputs

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        return self.outputs

    def decode(self, output: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        return yolo_v3_decode(*output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    B, C, grids = args.batch, 20, (24, 12, 6)
    images = torch.zeros(B, 3, 192, 192)

    anchors = torch.tensor(
        [
            [[0.05, 0.06], [0.08, 0.08], [0.11, 0.1]],
            [[0.15, 0.14], [0.2, 0.19], [0.27, 0.25]],
            [[0.33, 0.33], [0.42, 0.4], [0.52, 0.5]],
        ]
    )
    priors = yolo_priors(list(grids), anchors)
    pred = torch.randn(B, len(priors), 5 + C, generator=g) * 0.5
    pred[..., 4] = 0.0  # objectness 0.5
    pred[..., 5:] = torch.randn(B, len(priors), C, generator=g) * 1.5 - 7.3
    yolo = Fixed((pred, priors))

    sizes, ratios = ((0.1, 0.16), (0.24, 0.32), (0.45, 0.6)), (1.0, 2.0, 0.5)
    ssd_anchors = torch.cat(
        [generate_anchors(s, s, z, ratios) for s, z in zip(grids, sizes)]
    )
    logits = torch.randn(B, len(ssd_anchors), C + 1, generator=g) * 1.5 - 4.0
    logits[..., 0] = 4.0  # background
    offsets = torch.randn(B, len(ssd_anchors), 4, generator=g) * 0.5
    ssd = Fixed((ssd_anchors, logits, offsets))

    kw = dict(score_threshold=0.01, iou_threshold=0.45, max_detections=100)
    t_yolo, det_yolo = best_time(lambda: yolo_predict(yolo, images, **kw), args.repeats)
    t_ssd, det_ssd = best_time(lambda: predict(ssd, images, **kw), args.repeats)
    cand_yolo = float((yolo_v3_decode(pred, priors)[1] > 0.01).float().mean())
    cand_ssd = float((logits.softmax(-1)[..., 1:] > 0.01).float().mean())
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), CPU process time, best of {args.repeats}"
    )
    print(
        f"batch of {B} images, {C} classes; pairs above the threshold: "
        f"YOLO {cand_yolo:.2%}, SSD {cand_ssd:.2%}"
    )
    for name, n, t, det in (
        ("YOLO v3 decode + NMS", len(priors), t_yolo, det_yolo),
        ("SSD decode + NMS", len(ssd_anchors), t_ssd, det_ssd),
    ):
        kept = sum(len(d["scores"]) for d in det) / B
        print(
            f"{name:<22} {n:5d} boxes/image  {t:8.4f} s  {t / B * 1e3:6.2f} ms/image  "
            f"{kept:5.1f} detections/image"
        )
    print(f"ratio SSD / YOLO       {t_ssd / t_yolo:8.2f} x")


if __name__ == "__main__":
    main()
