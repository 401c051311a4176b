"""From-scratch recurrent layers vs torch's: d2lcv.models.Recurrent vs nn.RNN/GRU/LSTM.

One training step (forward and backward) of a one-layer network on a character batch
(32 sequences of 35 one-hot vectors of 28 tokens, as in the chapter's language model),
with the same weights: checks that the outputs agree and prints the CPU time of each
(best of --repeats) and the ratio scratch / torch. Also times greedy vs beam CTC decoding.
Run: python bench/bench_rnn.py [--threads 1] [--repeats 5] [--hidden 256]
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from d2lcv.models import Recurrent, copy_torch_weights
from d2lcv.ops import ctc_beam_decode, ctc_greedy_decode
from d2lcv.utils import best_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.nn.functional.one_hot(torch.randint(0, 28, (32, 35)), 28).float()
    for kind, cls in (("rnn", nn.RNN), ("gru", nn.GRU), ("lstm", nn.LSTM)):
        theirs = cls(28, args.hidden, batch_first=True)
        ours = copy_torch_weights(Recurrent(kind, 28, args.hidden), theirs)
        assert torch.allclose(ours(x)[0], theirs(x)[0], atol=1e-5), kind
        t_ours = best_time(lambda: ours(x)[0].sum().backward(), args.repeats)[0]
        t_theirs = best_time(lambda: theirs(x)[0].sum().backward(), args.repeats)[0]
        print(f"{kind:>4}: scratch {1000 * t_ours:7.1f} ms, torch {1000 * t_theirs:7.1f} ms, "
              f"ratio {t_ours / t_theirs:.2f}")
    log_probs = torch.randn(500, 16, 11).log_softmax(-1)
    t_greedy = best_time(lambda: ctc_greedy_decode(log_probs), args.repeats)[0]
    t_beam = best_time(lambda: ctc_beam_decode(log_probs, 10), args.repeats)[0]
    print(f"CTC decoding of 500 x 16 columns: greedy {1000 * t_greedy:.1f} ms, beam (10) {1000 * t_beam:.1f} ms, "
          f"ratio {t_beam / t_greedy:.0f}")


if __name__ == "__main__":
    main()
