"""Is the data pipeline the bottleneck? Augmentation throughput vs training-step throughput on the CPU.

Prints images/s of the "flip_crop_color" pipeline (d2lcv.transforms.cifar_pipeline) on uint8
CIFAR tensors and on PIL images, through a DataLoader with 0 and 2 workers; images/s of a
training step (forward + backward + SGD step, batch 128) of SimpleCNN(width=32) and
resnet_cifar(width=16); and their ratio (pipeline / train: above 1, the pipeline keeps up).
Uses real CIFAR-10 if D2LCV_MIRROR is set, else random images (same sizes, same cost).
The pipeline runs with one intra-op thread in the main process too (as in the workers).
Run: python bench/bench_augment.py [--images N] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from d2lcv.transforms import cifar_pipeline
from d2lcv.models import SimpleCNN, resnet_cifar

BATCH = 128


class Augmented(Dataset):
    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def load(n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    if os.environ.get("D2LCV_MIRROR"):
        from d2lcv.data import CIFAR10

        x, y = CIFAR10("train").tensors(n=n, generator=torch.Generator().manual_seed(0))
        return x, y, "CIFAR-10 train"
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.randint(0, 10, (n,), generator=g), "random"


def pipeline_rate(images, labels, workers: int) -> float:
    # one intra-op thread, as in each DataLoader worker: per-image ops on 3x32x32 tensors are
    # many times slower with more threads, which only add synchronisation
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    loader = DataLoader(
        Augmented(images, labels, cifar_pipeline("flip_crop_color")),
        batch_size=BATCH, shuffle=True, num_workers=workers, persistent_workers=workers > 0,
    )
    for _ in loader:  # warm-up epoch: starts the workers
        pass
    start = time.perf_counter()
    n = sum(len(x) for x, _ in loader)
    rate = n / (time.perf_counter() - start)
    torch.set_num_threads(threads)
    return rate


def train_rate(model: torch.nn.Module, steps: int) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(BATCH, 3, 32, 32, generator=g), torch.randint(0, 10, (BATCH,), generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * BATCH / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1536)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y, source = load(args.images)
    pils = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in x]
    print(f"{source} images: {len(x)}, batch {BATCH}, training threads {args.threads}, cores {os.cpu_count()}")

    print('\npipeline "flip_crop_color" (RandomCrop+Flip+ColorJitter+ToDtype+Normalize), images/s')
    rates = {}
    for kind, images in (("uint8 tensor", list(x)), ("PIL image", pils)):
        for workers in (0, 2):
            rates[kind, workers] = pipeline_rate(images, y, workers)
            print(f"  {kind:<13} num_workers={workers}: {rates[kind, workers]:8.0f}")

    print("\ntraining step (forward+backward+SGD step, batch 128), images/s")
    train = {}
    for name, model, steps in (("SimpleCNN(width=32)", SimpleCNN(width=32), 6), ("resnet_cifar(width=16)", resnet_cifar(width=16), 3)):
        train[name] = train_rate(model, steps)
        print(f"  {name:<23}: {train[name]:8.0f}")

    print("\nratio pipeline / train (> 1: the pipeline keeps up)")
    for (kind, workers), rate in rates.items():
        cells = "  ".join(f"{name.split('(')[0]} {rate / t:6.1f}" for name, t in train.items())
        print(f"  {kind:<13} num_workers={workers}: {cells}")


if __name__ == "__main__":
    main()
