"""im2col convolution (d2lcv.ops.conv2d_im2col) vs torch.nn.functional.conv2d, on the CPU.

Prints, for a few layer sizes, the best-of-N time of each and their ratio (ours / torch).
Run: python bench/bench_im2col.py [--threads N] [--repeat N]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from d2lcv.ops import conv2d_im2col

# (batch, C_in, H=W, C_out, kernel, stride, padding): CIFAR-sized and ImageNet-sized layers
CASES = [
    (32, 3, 32, 32, 3, 1, 1),
    (32, 64, 32, 64, 3, 1, 1),
    (32, 128, 16, 128, 3, 1, 1),
    (8, 3, 224, 64, 7, 2, 3),
    (8, 64, 56, 64, 3, 1, 1),
    (8, 256, 14, 256, 3, 1, 1),
]


def best_of(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, best of {args.repeat}")
    print(f"{'input':>18} {'kernel':>14} {'im2col ms':>10} {'conv2d ms':>10} {'ratio':>7}")
    for B, C, HW, C_out, k, s, p in CASES:
        x = torch.randn(B, C, HW, HW, generator=gen)
        w = torch.randn(C_out, C, k, k, generator=gen)
        with torch.no_grad():
            ours = best_of(lambda: conv2d_im2col(x, w, stride=s, padding=p), args.repeat)
            ref = best_of(lambda: F.conv2d(x, w, stride=s, padding=p), args.repeat)
        print(f"{f'{B}x{C}x{HW}x{HW}':>18} {f'{C_out}x{k}x{k}/s{s}p{p}':>14} "
              f"{ours * 1e3:10.2f} {ref * 1e3:10.2f} {ours / ref:6.2f}x")


if __name__ == "__main__":
    main()
