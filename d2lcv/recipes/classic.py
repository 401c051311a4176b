"""The classic-networks chapter's protocol: CIFAR-10 tensors, the CIFAR-10 versions of the
architectures, one training recipe for all of them, timing, and a cache of results that
later pages of the chapter read."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from d2lcv.engine import evaluate, fit
from d2lcv.models import classic as C
from d2lcv.utils.seeding import seeded

__all__ = ["CIFAR_MODELS", "cifar_model", "cifar_tensors", "train_classifier", "FlipShift", "correct", "test_accuracy",
           "fit_and_test", "model_row", "table_rows", "select_knn", "baseline_results", "latency",
           "throughput", "results_path", "save_results", "load_results"]

CIFAR_MODELS = ("LeNet-5", "AlexNet", "VGG-11", "NiN", "GoogLeNet", "ResNet-18", "ResNeXt", "DenseNet")
"""The architectures of the model table, in historical order. (:func:`cifar_model` also
builds ``"Inception v3"``, which is too slow to train on a CPU page.)"""


def cifar_model(name: str) -> nn.Module:
    """A fresh model ``name`` (one of :data:`CIFAR_MODELS` or ``"Inception v3"``) scaled for 32x32 CIFAR-10 images
    at CPU-sized widths, in channels-last memory format."""
    configs = {
        "LeNet-5": lambda: C.lenet5(10, in_channels=3, image_size=32,
                                    modern=True, width=2),
        "AlexNet": lambda: C.alexnet(10, channels=(16, 48, 64, 64, 48), hidden=256,
                                     small_input=True, batch_norm=True),
        "VGG-11": lambda: C.vgg(11, 10, width=0.25, batch_norm=True,
                                hidden=128, pool_size=1),
        "NiN": lambda: C.NiN(10, (16, 32, 64), small_input=True, batch_norm=True),
        "GoogLeNet": lambda: C.GoogLeNet(10, width=0.125, small_input=True),
        "Inception v3": lambda: C.InceptionV3(10, aux_logits=False, width=0.125,
                                              small_input=True),
        "ResNet-18": lambda: C.resnet(18, 10, width=16,
                                      small_input=True, stem_pool=True),
        "ResNeXt": lambda: C.ResNet(C.Bottleneck, (1, 1, 1, 1), 10, width=16,
                                    small_input=True, groups=4, base_width=4,
                                    stem_pool=True),
        "DenseNet": lambda: C.DenseNet((3, 3, 3), growth_rate=12, num_classes=10,
                                       init_features=24, small_input=True,
                                       stem_pool=True),
    }
    if name not in configs:
        raise ValueError(f"name must be one of {list(configs)}, got {name!r}")
    return configs[name]().to(memory_format=torch.channels_last)


def cifar_tensors(n_train: int, n_val: int, n_test: int) -> tuple[Tensor, ...]:
    """Class-balanced CIFAR-10 subsets, normalised, as float tensors.

    The validation images are drawn from the training set, disjoint from the ``n_train``
    training images. Returns ``(x_train, y_train, x_val, y_val, x_test, y_test)``;
    images float [N, 3, 32, 32], labels int64 [N].
    """
    from d2lcv.data.cifar10 import CIFAR10
    from d2lcv.transforms.classification import cifar_pipeline

    x, y = CIFAR10("train").tensors(n=n_train + n_val, generator=torch.Generator().manual_seed(0))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    x, y = cifar_pipeline("none")(x[order]), y[order]
    x_test, y_test = CIFAR10("test").tensors(n=n_test, generator=torch.Generator().manual_seed(1))
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:], cifar_pipeline("none")(x_test), y_test


def train_classifier(model: nn.Module, x: Tensor, y: Tensor, *, epochs: int,
                     batch_size: int = 64, max_lr: float = 5e-3,
                     weight_decay: float = 5e-2, augment: bool = True, seed: int = 0,
                     val: tuple[Tensor, Tensor] | None = None, device=None):
    """The chapter's one recipe: AdamW under a one-cycle learning rate, cross-entropy,
    random flips and shifts of up to 4 pixels, the same for every architecture. Runs
    under :func:`~d2lcv.utils.seeding.seeded` ``(seed)``. Returns the engine's
    ``History``."""
    with seeded(seed):
        loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(seed))
        if augment:
            loader = FlipShift(loader)
        val_loader = None
        if val is not None:
            val_loader = DataLoader(TensorDataset(*val), batch_size=500)
        optimizer = torch.optim.AdamW(model.parameters(), lr=max_lr,
                                      weight_decay=weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr, total_steps=epochs * len(loader))
        return fit(model, loader, val_loader, epochs=epochs, optimizer=optimizer,
                   scheduler=scheduler, scheduler_interval="batch", device=device)


class FlipShift:
    """Batches (x [B, C, H, W], y) of ``loader`` with each image mirrored with probability
    1/2 and shifted by up to ``pad`` pixels in each direction (a random crop of the image
    padded with zeros, the mean colour of normalised images)."""

    def __init__(self, loader, pad: int = 4) -> None:
        self.loader, self.pad = loader, pad

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        p = self.pad
        for x, y in self.loader:
            flip = torch.rand(len(x)) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            padded = torch.nn.functional.pad(x, (p, p, p, p))
            dy, dx = torch.randint(0, 2 * p + 1, (2, len(x))).tolist()
            h, w = x.shape[2:]
            yield torch.stack([padded[i, :, a:a + h, b:b + w] for i, (a, b) in enumerate(zip(dy, dx))]), y


@torch.no_grad()
def correct(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Tensor[N] of bools: is each image of x [N, 3, H, W] classified as its label y [N]?
    (eval mode; the model's device)."""
    model.eval()
    device = next(model.parameters()).device
    pred = torch.cat([model(xb.to(device)).argmax(1).cpu() for xb in x.split(500)]) if len(x) else y[:0]
    return pred == y


def test_accuracy(model: nn.Module, x: Tensor, y: Tensor, device=None) -> float:
    """Top-1 accuracy of ``model`` on images x [N, 3, H, W], labels y [N]."""
    return evaluate(model, DataLoader(TensorDataset(x, y), batch_size=500), device=device)["acc"]


def fit_and_test(model: nn.Module, data: tuple[Tensor, ...], *, epochs: int, seed: int = 0, **kwargs) -> dict:
    """Train ``model`` with :func:`train_classifier` on ``data`` (from :func:`cifar_tensors`)
    and test it: ``{"acc", "train_acc", "seconds", "correct": list of bools, "history",
    "model"}`` (``train_acc`` on the flipped training batches of the last epoch)."""
    x_train, y_train, _, _, x_test, y_test = data
    start = time.perf_counter()
    history = train_classifier(model, x_train, y_train, epochs=epochs, seed=seed, **kwargs)
    seconds = time.perf_counter() - start
    ok = correct(model, x_test, y_test)
    return dict(acc=ok.float().mean().item(), train_acc=history.last["train_acc"], seconds=seconds,
                correct=ok.tolist(), history=history, model=model)


def model_row(name: str, data: tuple[Tensor, ...], *, epochs: int, seed: int = 0,
              make=None, **kwargs) -> dict:
    """One row of the model table: train :func:`cifar_model` ``(name)`` (or ``make()``) with
    :func:`fit_and_test` and measure it. Returns ``{"acc", "train_acc", "seconds",
    "correct", "params", "macs", "latency_ms" (one image, one thread), "throughput"
    (images/s, batches of 256), "history": the per-epoch records}``."""
    from d2lcv.models.summary import count_macs

    with seeded(seed):
        model = make() if make is not None else cifar_model(name)
    macs = count_macs(model, torch.randn(1, 3, 32, 32))
    result = fit_and_test(model, data, epochs=epochs, seed=seed, **kwargs)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # latency: one image on one core
    try:
        image = torch.randn(1, 3, 32, 32).to(memory_format=torch.channels_last)
        ms = 1000 * latency(model, image)
    finally:
        torch.set_num_threads(threads)
    result.pop("model")
    return {**result, "history": result["history"].records,
            "params": sum(p.numel() for p in model.parameters()), "macs": macs,
            "latency_ms": ms, "throughput": throughput(model)}


def table_rows(names, data: tuple[Tensor, ...], *, epochs: int, key: str, profile: str, retrain: bool = False,
               **kwargs) -> dict:
    """:func:`model_row` for each name, cached as ``key`` in the data cache.

    Rows cached by an earlier run with the same sizes (training and test images, epochs)
    are reused unless ``retrain``; each newly trained row is saved at once, so that an
    interrupted run keeps the networks it finished."""
    sizes = dict(n_train=len(data[0]), n_test=len(data[4]), epochs=epochs)
    cached = load_results(key, profile)
    rows = cached["rows"] if cached is not None and all(cached.get(k) == v for k, v in sizes.items()) else {}
    if retrain:
        rows = {}
    for name in names:
        if name not in rows:
            rows[name] = model_row(name, data, epochs=epochs, **kwargs)
            save_results({**sizes, "rows": rows}, key, profile)
    return {name: rows[name] for name in names}


def select_knn(knn: C.KNN, x_val: Tensor, y_val: Tensor, ks=(1, 3, 5, 10, 20), ps=(1.0, 2.0)) -> dict:
    """Validation accuracy of ``knn`` for every ``(k, p)``: ``{(k, p): accuracy}``; the
    distances are computed once per ``p``."""
    scores = {}
    for p in ps:
        dist = torch.cat([knn.distances(xb, p) for xb in x_val.split(500)])
        for k in ks:
            scores[k, p] = (C.vote(dist, knn.y, k) == y_val).float().mean().item()
    return scores


def baseline_results(data: tuple[Tensor, ...], *, epochs: int, hidden=(512, 512), seed: int = 0) -> dict:
    """The baselines of the chapter's first page in one call: kNN with ``(k, p)`` chosen on
    the validation images, a linear classifier and an MLP trained by :func:`fit_and_test`
    (lr 1e-3). Returns ``{name: {"acc", "correct", ...}}``."""
    x_train, y_train, x_val, y_val, x_test, y_test = data
    knn = C.KNN(x_train, y_train)
    scores = select_knn(knn, x_val, y_val)
    k, p = max(scores, key=scores.get)
    ok = knn.predict(x_test, k, p) == y_test
    out = {"kNN": dict(acc=ok.float().mean().item(), correct=ok.tolist(), k=k, p=p)}
    for name, model in (("linear", C.linear_classifier()), ("MLP", C.mlp(hidden=hidden))):
        with seeded(seed):
            model = model.to(memory_format=torch.channels_last)
        result = fit_and_test(model, data, epochs=epochs, seed=seed, max_lr=1e-3)
        out[name] = {key: v for key, v in result.items() if key not in ("history", "model")}
        out[name]["params"] = sum(p.numel() for p in model.parameters())
    return out


@torch.no_grad()
def latency(model: nn.Module, x: Tensor, repeat: int = 20) -> float:
    """Median seconds of one forward pass of ``x`` (e.g. one image [1, 3, 32, 32]) in eval mode."""
    model.eval()
    model(x)  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def throughput(model: nn.Module, batch_size: int = 256, repeat: int = 3) -> float:
    """Images per second in eval mode for batches of ``batch_size`` 32x32 images (best of ``repeat``)."""
    x = torch.randn(batch_size, 3, 32, 32).to(memory_format=torch.channels_last)
    return batch_size / min(latency(model, x, 1) for _ in range(repeat))


def results_path(name: str, profile: str) -> Path:
    """``<cache>/classic/<name>-<profile>.json`` (see :func:`d2lcv.data.cache_dir`)."""
    from d2lcv.data import cache_dir

    return cache_dir() / "classic" / f"{name}-{profile}.json"


def save_results(results: dict, name: str, profile: str) -> Path:
    """Write ``results`` (JSON-able) to :func:`results_path` atomically; returns the path."""
    from d2lcv.utils.io import atomic_write

    path = results_path(name, profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as f:
        f.write(json.dumps(results, indent=1))
    return path


def load_results(name: str, profile: str) -> dict | None:
    """The results saved by :func:`save_results`, or None if there are none yet."""
    path = results_path(name, profile)
    return json.loads(path.read_text()) if path.exists() else None

