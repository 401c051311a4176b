"""An imaginary detector, to study detection metrics without training one."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["simulate_detections"]


def _objects(g: torch.Generator, num_classes: int, image_size: float,
             max_objects: int) -> tuple[Tensor, Tensor, Tensor]:
    """0..max_objects random boxes [G, 4] xyxy, their sizes [G, 2] and classes [G]."""
    G = int(torch.randint(0, max_objects + 1, (1,), generator=g))
    xy = torch.rand(G, 2, generator=g) * image_size * 0.75
    wh = (torch.rand(G, 2, generator=g) * 0.3 + 0.05) * image_size
    return torch.cat([xy, xy + wh], 1), wh, torch.randint(0, num_classes, (G,), generator=g)


def _found(boxes: Tensor, wh: Tensor, labels: Tensor, g: torch.Generator, num_classes: int,
           jitter: float, miss_rate: float, duplicate_rate: float,
           confusion_rate: float) -> tuple[Tensor, Tensor, Tensor]:
    """The noisy copies of the boxes a detector finds, their classes and a quality score."""
    G = len(boxes)
    found = torch.rand(G, generator=g) >= miss_rate
    copies = found.long() + (found & (torch.rand(G, generator=g) < duplicate_rate)).long()
    src = torch.repeat_interleave(torch.arange(G), copies)
    noise = torch.randn(len(src), 4, generator=g) * jitter
    det = boxes[src] + noise * wh[src].repeat(1, 2)
    det = torch.cat([det[:, :2].minimum(det[:, 2:]), det[:, :2].maximum(det[:, 2:])], 1)
    det_labels = labels[src].clone()
    wrong = torch.rand(len(src), generator=g) < confusion_rate
    det_labels[wrong] = torch.randint(0, num_classes, (int(wrong.sum()),), generator=g)
    quality = -noise.abs().mean(1) / max(jitter, 1e-6)  # ~ -0.8 on average, higher = better
    return det, det_labels, quality


def _false_positives(g: torch.Generator, num_classes: int, image_size: float,
                     rate: float) -> tuple[Tensor, Tensor]:
    F = int(torch.poisson(torch.tensor([float(rate)]), generator=g))
    xy = torch.rand(F, 2, generator=g) * image_size * 0.8
    wh = (torch.rand(F, 2, generator=g) * 0.25 + 0.03) * image_size
    return torch.cat([xy, xy + wh], 1), torch.randint(0, num_classes, (F,), generator=g)


def simulate_detections(
    num_images: int, num_classes: int, generator: torch.Generator, *,
    image_size: float = 300.0, max_objects: int = 6, jitter: float = 0.1,
    miss_rate: float = 0.2, duplicate_rate: float = 0.3, confusion_rate: float = 0.1,
    false_positives: float = 2.0,
) -> tuple[list[dict], list[dict]]:
    """Ground truth and the detections of an imaginary detector, to study the metrics.

    Each image gets 0..``max_objects`` boxes of random classes. The "detector" finds each box
    with probability ``1 - miss_rate`` (localisation noise: corners moved by ``jitter`` times
    the box size, Gaussian), sometimes twice (``duplicate_rate``), sometimes with a wrong
    class (``confusion_rate``), and adds Poisson(``false_positives``) boxes at random places.
    Scores are higher for better-placed detections, with noise, as a trained detector's are.

    Returns:
        ``(detections, ground_truths)`` in the format :func:`~d2lcv.metrics.detection.evaluate_detections` takes.
    """
    g, dets, gts = generator, [], []
    for _ in range(num_images):  # generating data, not evaluating: a loop is fine here
        boxes, wh, labels = _objects(g, num_classes, image_size, max_objects)
        det, det_labels, quality = _found(boxes, wh, labels, g, num_classes, jitter,
                                          miss_rate, duplicate_rate, confusion_rate)
        fp, fp_labels = _false_positives(g, num_classes, image_size, false_positives)
        det = torch.cat([det, fp]).clamp(0, image_size)
        logits = torch.cat([1.0 + quality, torch.full((len(fp),), -1.5)])
        logits = logits + torch.randn(len(det), generator=g)  # better placed: higher
        det_labels = torch.cat([det_labels, fp_labels])
        dets.append(dict(boxes=det, scores=torch.sigmoid(logits), labels=det_labels))
        gts.append(dict(boxes=boxes, labels=labels))
    return dets, gts
