"""d2lcv.models.rnn/lm, d2lcv.data.text, d2lcv.engine.clip_grad_norm and TBPTT training:
cells equal to torch's modules given the same weights, the LM iterator, clipping."""

import math

import pytest
import torch
from torch import nn

from d2lcv import data, engine, metrics
from d2lcv.models import RNNLM, GRUCell, LSTMCell, Recurrent, RNNCell, copy_torch_weights, generate, make_cell


@pytest.mark.parametrize("kind,torch_cls,options", [
    ("rnn", nn.RNN, {"nonlinearity": "tanh"}), ("rnn", nn.RNN, {"nonlinearity": "relu"}),
    ("gru", nn.GRU, {}), ("lstm", nn.LSTM, {}),
])
@pytest.mark.parametrize("layers", [1, 2])
def test_recurrent_equals_torch(kind, torch_cls, options, layers):
    torch.manual_seed(0)
    theirs = torch_cls(5, 7, layers, batch_first=True, **options)
    ours = copy_torch_weights(Recurrent(kind, 5, 7, layers, **options), theirs)
    x = torch.randn(3, 6, 5)
    out, state = ours(x)
    ref, ref_state = theirs(x)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    h_last = state[-1][0] if kind == "lstm" else state[-1]
    torch.testing.assert_close(h_last, (ref_state[0] if kind == "lstm" else ref_state)[-1], atol=1e-6, rtol=1e-5)
    # gradients too
    out.square().sum().backward()
    ref.square().sum().backward()
    torch.testing.assert_close(ours.cells[0].hh.weight.grad, theirs.weight_hh_l0.grad, atol=1e-5, rtol=1e-4)


def test_lstm_state_carries():
    torch.manual_seed(0)
    theirs = nn.LSTM(4, 6, batch_first=True)
    ours = copy_torch_weights(Recurrent("lstm", 4, 6), theirs)
    x = torch.randn(2, 8, 4)
    _, s = ours(x[:, :5])
    out, _ = ours(x[:, 5:], s)  # two calls with the carried state == one call
    torch.testing.assert_close(out, theirs(x)[0][:, 5:], atol=1e-6, rtol=1e-5)


def test_rnn_cell_hand_worked():
    cell = RNNCell(1, 1)
    with torch.no_grad():
        cell.ih.weight.fill_(2.0), cell.hh.weight.fill_(0.5), cell.ih.bias.fill_(0.1), cell.hh.bias.fill_(0.0)
    h, _ = cell(torch.tensor([[1.0]]), torch.tensor([[2.0]]))
    assert h.item() == pytest.approx(math.tanh(2 + 1 + 0.1))


def test_lstm_variants():
    torch.manual_seed(0)
    x, state = torch.randn(3, 4), (torch.randn(3, 5), torch.randn(3, 5))
    coupled = LSTMCell(4, 5, coupled=True)
    assert coupled.ih.weight.shape == (15, 4)  # three gate blocks, no input gate
    h, c, g = coupled.step(x, state)
    torch.testing.assert_close(g["input"], 1 - g["forget"])
    torch.testing.assert_close(c, g["forget"] * state[1] + g["input"] * torch.tanh(coupled.ih(x).chunk(3, 1)[1]
                                                                                  + coupled.hh(state[0]).chunk(3, 1)[1]))
    peep = LSTMCell(4, 5, peephole=True)
    plain = LSTMCell(4, 5)
    plain.load_state_dict({k: v for k, v in peep.state_dict().items() if k != "p"})
    torch.testing.assert_close(peep(x, state)[0], plain(x, state)[0])  # zero peepholes == plain
    with torch.no_grad():
        peep.p.fill_(1.0)
    assert not torch.allclose(peep(x, state)[0], plain(x, state)[0])
    assert sum(p.numel() for p in peep.parameters()) == sum(p.numel() for p in plain.parameters()) + 15


def test_gru_gates():
    torch.manual_seed(0)
    cell = GRUCell(3, 4)
    h0 = torch.randn(2, 4)
    h, gates = cell.step(torch.randn(2, 3), h0)
    assert set(gates) == {"reset", "update"} and h.shape == (2, 4)
    assert ((gates["update"] > 0) & (gates["update"] < 1)).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match="cell must be one of"):
        make_cell("transformer", 3, 4)
    with pytest.raises(ValueError, match="nonlinearity"):
        RNNCell(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size"):
        RNNCell(3, 0)
    with pytest.raises(ValueError, match=r"x must be \[B, T, 3\]"):
        Recurrent("gru", 3, 4)(torch.randn(2, 3))
    with pytest.raises(ValueError, match="cannot copy"):
        copy_torch_weights(Recurrent("gru", 3, 4), nn.LSTM(3, 4))
    with pytest.raises(ValueError, match="impl"):
        RNNLM(10, impl="cuda")


@pytest.mark.parametrize("impl", ["scratch", "torch"])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_lm_shapes_and_generate(impl, cell):
    torch.manual_seed(0)
    lm = RNNLM(11, 16, cell, impl=impl)
    logits, state = lm(torch.randint(0, 11, (2, 5)))
    assert logits.shape == (2, 5, 11)
    out = generate(lm, torch.tensor([1, 2]), 6, generator=torch.Generator().manual_seed(0))
    assert out.shape == (8,) and out[:2].tolist() == [1, 2]
    greedy = generate(lm, torch.tensor([1, 2]), 6, temperature=0)
    assert torch.equal(greedy, generate(lm, torch.tensor([1, 2]), 6, temperature=0))
    with pytest.raises(ValueError, match="prefix"):
        generate(lm, torch.tensor([], dtype=torch.int64), 3)


def test_tokenize_vocab():
    assert data.tokenize("The Time-Machine, 1895!") == list("the time machine")
    assert data.tokenize("The Time-Machine, 1895!", "word") == ["the", "time", "machine"]
    vocab = data.Vocab(list("abracadabra"))
    assert vocab.idx_to_token == ["<unk>", "a", "b", "r", "c", "d"]  # by count, ties alphabetically
    ids = vocab.encode(list("cabz"))
    assert ids.tolist() == [4, 1, 2, 0] and vocab.decode(ids) == "cab<unk>"
    with pytest.raises(ValueError, match="level"):
        data.tokenize("x", "byte")


@pytest.mark.parametrize("partition", ["sequential", "random"])
def test_lm_loader(partition):
    corpus = torch.arange(100)
    loader = data.LMLoader(corpus, batch_size=3, num_steps=5, partition=partition, seed=1)
    batches = list(loader)
    assert len(batches) == len(loader) == 6
    for x, y in batches:
        assert x.shape == y.shape == (3, 5)
        assert torch.equal(y, x + 1)  # the next token
        assert torch.equal(x[:, 1:], x[:, :-1] + 1)  # contiguous pieces
    starts = torch.cat([x[:, 0] for x, _ in batches])
    assert len(set(starts.tolist())) == len(starts)  # no piece twice
    if partition == "sequential":  # batch k + 1 continues batch k, row by row
        for (x0, _), (x1, _) in zip(batches, batches[1:]):
            assert torch.equal(x1[:, 0], x0[:, -1] + 1)
    again = list(data.LMLoader(corpus, 3, 5, partition=partition, seed=1))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again))  # deterministic
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(batches, list(loader)))  # a new epoch differs
    fixed = data.LMLoader(corpus, 3, 5, random_offset=False)
    assert list(fixed)[0][0][0, 0].item() == 0


def test_lm_loader_bad():
    with pytest.raises(ValueError, match="partition"):
        data.LMLoader(torch.arange(100), 2, 5, partition="shuffled")
    with pytest.raises(ValueError, match="at least"):
        data.LMLoader(torch.arange(10), 2, 5)
    with pytest.raises(ValueError, match="val_fraction"):
        data.split_corpus(torch.arange(10), 1.5)
    train, val = data.split_corpus(torch.arange(10), 0.2)
    assert train.tolist() == list(range(8)) and val.tolist() == [8, 9]


@pytest.mark.parametrize("max_norm", [0.01, 1.0, 1e6])
def test_clip_grad_norm_equals_torch(max_norm):
    torch.manual_seed(0)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    x = torch.randn(5, 4)
    for m in (a, b):
        m(x).pow(3).sum().backward()
    ours = engine.clip_grad_norm(a.parameters(), max_norm)
    theirs = nn.utils.clip_grad_norm_(b.parameters(), max_norm)
    assert ours == pytest.approx(theirs.item(), rel=1e-6)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p.grad, q.grad)
    with pytest.raises(ValueError, match="max_norm"):
        engine.clip_grad_norm(a.parameters(), 0)
    assert engine.clip_grad_norm(nn.Linear(2, 2).parameters(), 1.0) == 0.0  # no gradients yet


def test_tbptt_fit_learns_a_cycle():
    torch.manual_seed(0)
    corpus = torch.arange(1500) % 5  # 0 1 2 3 4 0 1 ...: perfectly predictable
    train = data.LMLoader(corpus, 8, 10, seed=0)
    val = data.LMLoader(corpus[:500], 8, 10, random_offset=False)
    model = RNNLM(5, 16, "gru")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead
    try:
        h = engine.fit(model, train, val, epochs=3, step=engine.TBPTTStep(), progress=False, grad_clip=1.0,
                       optimizer=lambda p: torch.optim.Adam(p, 2e-2))
    finally:
        torch.set_num_threads(threads)
    assert h.last["val_ppl"] < 1.2
    assert metrics.perplexity(h.last["val_loss"]) == pytest.approx(h.last["val_ppl"])


def test_perplexity():
    assert metrics.perplexity(math.log(28)) == pytest.approx(28)
    assert metrics.perplexity(0.0) == 1.0
    with pytest.raises(ValueError, match="mean_nll"):
        metrics.perplexity(-1.0)
