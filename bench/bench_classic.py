"""d2lcv.models.classic vs torchvision.models: forward time at ImageNet size, equal configuration.

Each pair has the same layers (the tests check equal parameter counts); both run in eval
mode without gradients on a batch of --batch random images (299x299 for Inception v3,
224x224 otherwise), channels-last. Prints the best-of --repeats CPU process time of each
and the ratio ours / torchvision (goal: <= 1.1, i.e. the teaching code costs nothing).
Run: python bench/bench_classic.py [--threads 1] [--batch 2] [--repeats 3] [--models resnet18,vgg11]
"""

from __future__ import annotations

import argparse
import warnings

import torch
import torchvision

from d2lcv.models import classic as C
from d2lcv.utils import best_time

PAIRS = {
    "alexnet": lambda: C.alexnet(),
    "vgg11": lambda: C.vgg(11),
    "vgg16_bn": lambda: C.vgg(16, batch_norm=True),
    "googlenet": lambda: C.GoogLeNet(aux_logits=True, k5=3),
    "inception_v3": lambda: C.InceptionV3(),
    "resnet18": lambda: C.resnet(18),
    "resnet50": lambda: C.resnet(50),
    "resnext50_32x4d": lambda: C.resnext(50),
    "densenet121": lambda: C.densenet(121),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default=",".join(PAIRS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, CPU process time, "
          f"best of {args.repeats}")
    print(f"{'model':>16} {'torchvision s':>14} {'d2lcv s':>9} {'ratio':>6}")
    for name in args.models.split(","):
        size = 299 if name == "inception_v3" else 224
        x = torch.randn(args.batch, 3, size, size).to(memory_format=torch.channels_last)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = getattr(torchvision.models, name)(weights=None)
        ours = PAIRS[name]()
        times = []
        for model in (theirs, ours):
            model = model.eval().to(memory_format=torch.channels_last)
            with torch.no_grad():
                model(x)  # warm-up
                times.append(best_time(lambda: model(x), args.repeats)[0])
        print(f"{name:>16} {times[0]:>14.4f} {times[1]:>9.4f} {times[1] / times[0]:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
