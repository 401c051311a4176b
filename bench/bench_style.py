"""Style transfer speed: Gatys-style optimisation (per Adam iteration, and x 500 as in
Johnson et al.'s table) against one forward pass of the transform network.

Uses a random-weight VGG-19 (the speed does not depend on the weights) and random images.
Run: python bench/bench_style.py [--sizes 128 256 512] [--iters 2] [--width 32] [--residual 5]
"""

from __future__ import annotations

import argparse
import time

import torch
import torchvision

from d2lcv import losses, models, recipes
from d2lcv.config import try_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--iters", type=int, default=2, help="timed Adam iterations per size")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--residual", type=int, default=5)
    args = parser.parse_args()
    device = try_device()
    torch.manual_seed(0)
    vgg = torchvision.models.vgg19()
    extractor = models.FeatureExtractor(vgg.features, [losses.CONTENT_LAYER, *losses.STYLE_LAYERS], pool="avg").to(device)
    net = models.TransformNet(args.width, args.residual).to(device).eval()
    painting = torch.rand(3, 256, 256, device=device)
    print(f"device {device}, {torch.get_num_threads()} threads; transform net width {args.width}, "
          f"{args.residual} residual blocks; optimisation = time per Adam iteration x 500")
    print(f"{'size':>10} {'1 iteration':>12} {'500 iterations':>15} {'network':>9} {'speed-up':>9}")
    for s in args.sizes:
        photo = torch.rand(3, s, s, device=device)
        run = recipes.stylize(extractor, photo, painting, steps=args.iters, optimizer="adam", progress=False)
        per_iter = run.seconds / args.iters
        with torch.no_grad():
            net(photo[None])
            _sync(device)
            start = time.perf_counter()
            for _ in range(3):
                net(photo[None])
            _sync(device)
            t_net = (time.perf_counter() - start) / 3
        print(f"{s:>4} x {s:<4} {per_iter:>10.3f} s {500 * per_iter:>13.1f} s {t_net:>7.3f} s "
              f"{500 * per_iter / t_net:>8.0f}x")


if __name__ == "__main__":
    main()
