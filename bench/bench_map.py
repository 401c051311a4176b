"""COCO mAP: d2lcv.metrics.evaluate_detections vs pycocotools' COCOeval on a validation-size set.

A simulated detector (d2lcv.metrics.simulate_detections: jittered, missed, duplicated and
confused ground-truth boxes plus false positives) on --images images of --classes classes.
Times d2lcv.metrics.coco_map (COCO json from the tensors, index, loadRes, evaluate,
accumulate) and evaluate_detections (from the same tensors), CPU process time, and checks mAP, mAP@0.5 and mAP@0.75 agree to 1e-4.
Goal: faster, equal values.
Run: python bench/bench_map.py [--images 5000] [--classes 20]
"""

from __future__ import annotations

import argparse
import time

import torch

from d2lcv.metrics import coco_map, evaluate_detections, simulate_detections, to_coco


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dets, gts = simulate_detections(args.images, args.classes, torch.Generator().manual_seed(0))
    gt_json, det_json = to_coco(dets, gts, args.classes)
    print(f"{args.images} images, {args.classes} classes, {len(gt_json['annotations'])} boxes, "
          f"{len(det_json)} detections; {args.threads} thread(s), CPU process time")
    t = time.process_time()
    stats = coco_map(dets, gts, args.classes)
    theirs = [stats["map"], stats["map_50"], stats["map_75"]]
    t_coco = time.process_time() - t
    t = time.process_time()
    r = evaluate_detections(dets, gts, args.classes)
    t_ours = time.process_time() - t
    ours = [r.map, r.map_50, r.map_75]
    same = all(abs(a - b) <= 1e-4 for a, b in zip(ours, theirs))
    print(f"{'':24} {'mAP':>7} {'mAP@.5':>7} {'mAP@.75':>7} {'time s':>8}")
    print(f"{'pycocotools COCOeval':24} {theirs[0]:7.4f} {theirs[1]:7.4f} {theirs[2]:7.4f} {t_coco:8.2f}")
    print(f"{'d2lcv evaluate_detections':24} {ours[0]:7.4f} {ours[1]:7.4f} {ours[2]:7.4f} {t_ours:8.2f}")
    print(f"speed-up {t_coco / t_ours:.1f} x, equal to 1e-4: {same}")


if __name__ == "__main__":
    main()
