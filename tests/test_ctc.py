"""d2lcv.ops.ctc (greedy and beam decoding), d2lcv.metrics.sequence, d2lcv.engine.CTCStep."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from d2lcv import engine, metrics
from d2lcv.ops import ctc_beam_decode, ctc_collapse, ctc_greedy_decode


def test_collapse_hand_worked():
    assert ctc_collapse([0, 4, 4, 0, 4, 2, 2]) == [4, 4, 2]  # a blank separates the two 4s
    assert ctc_collapse([3, 3, 3]) == [3]
    assert ctc_collapse([0, 0]) == []
    assert ctc_collapse(torch.tensor([1, 0, 1, 1, 5]), blank=5) == [1, 0, 1]
    assert ctc_collapse([]) == []


def test_greedy_hand_worked():
    # T = 4, C = 3: paths argmax 1 1 0 2 -> [1, 2]; 0 0 0 0 -> []
    p = torch.tensor([[[0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8]],
                      [[0.9, 0.05, 0.05]] * 4]).log()
    assert ctc_greedy_decode(p) == [[1, 2], []]
    assert ctc_greedy_decode(torch.zeros(0, 4, 3)) == []


def test_beam_beats_greedy_hand_worked():
    # two steps, labels {1}: the best path is "- -" (0.6 * 0.6 = 0.36, the empty labelling),
    # but "1" has the paths "1 1", "1 -", "- 1": 0.16 + 0.24 + 0.24 = 0.64.
    p = torch.tensor([[[0.6, 0.4], [0.6, 0.4]]]).log()
    assert ctc_greedy_decode(p) == [[]]
    assert ctc_beam_decode(p, beam_width=4) == [[1]]


def _labelling_log_prob(lp, labels):
    """log p(labels | x) by F.ctc_loss (reduction none is the negative log-likelihood)."""
    T = lp.shape[0]
    if not labels:
        return lp[:, 0].sum().item()
    return -F.ctc_loss(lp[:, None], torch.tensor([labels]), torch.tensor([T]), torch.tensor([len(labels)]),
                       reduction="none").item()


def _brute_force(lp):
    """The most likely labelling, summing p over all C^T paths."""
    T, C = lp.shape
    totals = {}
    for path in itertools.product(range(C), repeat=T):
        key = tuple(ctc_collapse(path))
        totals[key] = totals.get(key, 0.0) + math.exp(sum(lp[t, c].item() for t, c in enumerate(path)))
    return max(totals, key=totals.get), totals


@pytest.mark.parametrize("seed", range(6))
def test_wide_beam_is_exact(seed):
    g = torch.Generator().manual_seed(seed)
    lp = (torch.randn(4, 3, generator=g) * 1.5).log_softmax(-1)
    best, totals = _brute_force(lp)
    assert tuple(ctc_beam_decode(lp[None], beam_width=100)[0]) == best
    # the beam's labelling probability matches F.ctc_loss's (exact sum over paths)
    assert math.log(totals[best]) == pytest.approx(_labelling_log_prob(lp, list(best)), abs=1e-5)
    # beam width 1 is not worse than nothing: its labelling is a valid one
    assert tuple(ctc_beam_decode(lp[None], beam_width=1)[0]) in totals


def test_beam_never_worse_than_greedy():
    g = torch.Generator().manual_seed(0)
    lp = (torch.randn(20, 7, 4, generator=g) * 2).log_softmax(-1)
    for x, greedy, beam in zip(lp, ctc_greedy_decode(lp), ctc_beam_decode(lp, 8)):
        assert _labelling_log_prob(x, beam) >= _labelling_log_prob(x, greedy) - 1e-6


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\[B, T, C\]"):
        ctc_greedy_decode(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="blank"):
        ctc_beam_decode(torch.zeros(1, 4, 3), blank=3)
    with pytest.raises(ValueError, match="beam_width"):
        ctc_beam_decode(torch.zeros(1, 4, 3), beam_width=0)


def test_string_metrics():
    assert metrics.edit_distance("kitten", "sitting") == 3
    assert metrics.edit_distance("", "abc") == 3 and metrics.edit_distance("abc", "abc") == 0
    assert metrics.char_error_rate(["12", "345"], ["12", "35"]) == pytest.approx(1 / 4)
    assert metrics.string_accuracy(["12", "345"], ["12", "35"]) == 0.5
    assert math.isnan(metrics.string_accuracy([], []))
    with pytest.raises(ValueError, match="same length"):
        metrics.char_error_rate(["1"], [])


def test_ctc_step_learns():
    """A tiny 'reader' of one-hot columns learns to output its input with CTC."""
    torch.manual_seed(0)
    n, T = 96, 6
    targets = torch.randint(1, 4, (n, 3))
    lengths = torch.randint(1, 4, (n,))
    x = torch.zeros(n, T, 4)
    for i in range(n):  # label k in column 2k, blanks elsewhere
        for k in range(int(lengths[i])):
            x[i, 2 * k, targets[i, k]] = 1
        x[i, (x[i].sum(1) == 0), 0] = 1
    loader = [(x[i:i + 32], targets[i:i + 32], lengths[i:i + 32]) for i in range(0, n, 32)]
    model = torch.nn.Linear(4, 4)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead
    try:
        h = engine.fit(model, loader, loader, epochs=15, step=engine.CTCStep(), progress=False,
                       optimizer=lambda p: torch.optim.Adam(p, 0.2))
    finally:
        torch.set_num_threads(threads)
    assert h.last["val_acc"] == 1.0 and h["val_loss"][-1] < h["val_loss"][0] / 10
