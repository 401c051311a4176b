"""A generated street-number dataset: digit strings of 1 to 5 digits, printed in the fonts
that ship with matplotlib (DejaVu, STIX) or written with scikit-learn's bundled handwritten
digits, on crops of real photos, with a random plate, perspective, blur and colour jitter.

Deterministic for a seed and cached in :func:`~d2lcv.data.cache_dir` (one ``.npz`` per
settings, written atomically). Each split draws from its own seeded generator, and the
handwritten digits of the training split are different writers' digits from those of
the validation and test splits.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont
from torch import Tensor

from d2lcv.utils.io import atomic_write
from d2lcv.utils.progress import progress as progress_bar

from .backgrounds import background_pools
from .cache import cache_dir

__all__ = [
    "HOUSE_NUMBER_FONTS",
    "HOUSE_NUMBERS_VERSION",
    "HOUSE_NUMBER_SPLITS",
    "house_number_fonts",
    "handwritten_digits",
    "render_house_number",
    "generate_house_numbers",
    "house_numbers",
]

HOUSE_NUMBERS_VERSION = 1
"""Bumped whenever the generator's output changes; part of the cache file's name."""

HOUSE_NUMBER_FONTS: tuple[str, ...] = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
)
"""Font files of matplotlib's ``mpl-data/fonts/ttf`` folder that the printed numbers use."""

HOUSE_NUMBER_SPLITS = ("train", "val", "test")
_SPLIT_SEED = {"train": 0, "val": 1, "test": 2}
_RENDER = 64  # glyphs are drawn this tall, then scaled down (anti-aliasing)


def house_number_fonts(size: int = _RENDER) -> list[ImageFont.FreeTypeFont]:
    """matplotlib's fonts of :data:`HOUSE_NUMBER_FONTS` at ``size`` pixels."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return [ImageFont.truetype(str(folder / name), size) for name in HOUSE_NUMBER_FONTS]


def handwritten_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits (UCI, 8 x 8, 0..16), for one split:
    the first 1,200 for ``"train"``, the remaining 597 for ``"val"`` and ``"test"``.

    Returns:
        ``(images float32 [N, 8, 8] in [0, 1], labels int64 [N])``.
    """
    spec = importlib.util.find_spec("sklearn")  # the file load_digits reads, without importing sklearn
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the handwritten digits are scikit-learn's: pip install scikit-learn, "
                          "or generate with handwritten=0")
    table = np.loadtxt(Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz",
                       delimiter=",", dtype=np.float32)  # [1797, 64 pixels + label]
    part = slice(0, 1200) if split == "train" else slice(1200, None)
    return table[part, :64].reshape(-1, 8, 8) / 16, table[part, 64].astype(np.int64)


def _glyphs_printed(text: str, font: ImageFont.FreeTypeFont, rng: np.random.Generator) -> Image.Image:
    """The string as a white-on-black mask, one glyph after the other with random spacing."""
    gap = int(rng.integers(-4, 12))
    widths = [int(np.ceil(font.getlength(ch))) for ch in text]
    mask = Image.new("L", (sum(widths) + gap * len(text) + 2 * _RENDER, 2 * _RENDER), 0)
    draw, x = ImageDraw.Draw(mask), _RENDER // 2
    for ch, w in zip(text, widths):
        draw.text((x, _RENDER // 2), ch, fill=255, font=font)
        x += w + gap
    return mask.crop(mask.getbbox())


def _glyphs_written(text: str, digits: tuple[np.ndarray, np.ndarray], rng: np.random.Generator) -> Image.Image:
    """The string written with random handwritten digits of the right classes."""
    images, labels = digits
    pieces = []
    for ch in text:
        candidates = np.flatnonzero(labels == int(ch))
        digit = images[candidates[rng.integers(len(candidates))]]
        piece = Image.fromarray((digit * 255).astype(np.uint8)).resize((40, _RENDER), Image.Resampling.BICUBIC)
        pieces.append(piece.crop(piece.getbbox() or (0, 0, 40, _RENDER)))
    gap = int(rng.integers(0, 10))
    mask = Image.new("L", (sum(p.width + gap for p in pieces), _RENDER), 0)
    x = 0
    for p in pieces:
        mask.paste(p, (x, (_RENDER - p.height) // 2))
        x += p.width + gap
    return mask.crop(mask.getbbox())


def _perspective(size: tuple[int, int], rng: np.random.Generator, strength: float) -> list[float]:
    """PIL's 8 perspective coefficients for corners moved by up to ``strength`` of the size."""
    W, H = size
    dst = np.array([[0, 0], [W, 0], [W, H], [0, H]], dtype=np.float64)
    src = dst + rng.uniform(-strength, strength, (4, 2)) * [W, H]
    rows = []
    for (x, y), (u, v) in zip(dst, src):  # output (x, y) samples input (u, v)
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
    return np.linalg.solve(np.array(rows), src.reshape(-1)).tolist()


def _background(pictures: Sequence[Image.Image], size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    W, H = size
    img = pictures[rng.integers(len(pictures))]
    w = int(rng.integers(min(W, img.width), min(img.width, img.height * W // H) + 1))
    h = w * H // W
    x, y = int(rng.integers(img.width - w + 1)), int(rng.integers(img.height - h + 1))
    return img.crop((x, y, x + w, y + h)).resize(size, Image.Resampling.BILINEAR)


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A plate colour and a text colour that differ in brightness by at least 0.35."""
    plate = rng.uniform(0, 1) * rng.uniform(0.8, 1.0, 3)
    lum = float(plate.mean())
    t = rng.uniform(0, max(lum - 0.35, 0.0)) if lum > 0.5 else rng.uniform(min(lum + 0.35, 1.0), 1)
    return plate, np.clip(t * rng.uniform(0.8, 1.2, 3), 0, 1)


def render_house_number(
    text: str,
    rng: np.random.Generator,
    pictures: Sequence[Image.Image],
    *,
    fonts: Sequence[ImageFont.FreeTypeFont],
    digits: tuple[np.ndarray, np.ndarray] | None = None,
    handwritten: float = 0.25,
    plate: float = 0.6,
    size: tuple[int, int] = (128, 32),
) -> Image.Image:
    """One street number: ``text`` printed (or, with probability ``handwritten``, written
    with the handwritten ``digits``) on a random plate or straight onto a crop of a photo,
    then a random perspective, blur, brightness and contrast.

    Args:
        text: 1 or more digits, e.g. ``"221"``.
        rng: the source of randomness.
        pictures: RGB photos to crop backgrounds from.
        fonts: fonts for the printed numbers (:func:`house_number_fonts`).
        digits: ``(images [N, 8, 8] in [0, 1], labels [N])``; None: printed numbers only.
        plate: the probability of a plate behind the number.
        size: ``(width, height)`` of the image in pixels.

    Returns:
        An RGB image of ``size``.
    """
    if not text or not text.isdigit():
        raise ValueError(f"text must be a non-empty string of digits, got {text!r}")
    W, H = size
    hand = digits is not None and rng.random() < handwritten
    mask = _glyphs_written(text, digits, rng) if hand else _glyphs_printed(text, fonts[rng.integers(len(fonts))], rng)
    scale = min(H * rng.uniform(0.5, 0.8) / mask.height, 0.8 * W / mask.width)
    w, h = max(1, round(mask.width * scale)), max(1, round(mask.height * scale))
    margin = min(5, (W - w) // 2)  # room for the perspective to move the corners
    x, y = int(rng.integers(margin, W - w - margin + 1)), int(rng.integers(0, H - h + 1))
    ink, board = Image.new("L", size, 0), Image.new("L", size, 0)
    ink.paste(mask.resize((w, h), Image.Resampling.LANCZOS), (x, y))
    if rng.random() < plate:  # a plate a few pixels larger than the number
        pad = rng.integers(1, 5, 2)
        ImageDraw.Draw(board).rectangle([x - pad[0], y - pad[1], x + w + pad[0], y + h + pad[1]], fill=255)
    coeffs = _perspective(size, rng, 0.06)
    ink, board = (m.transform(size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
                  for m in (ink, board))
    bg = np.asarray(_background(pictures, size, rng), dtype=np.float32) / 255
    plate_colour, text_colour = _colours(rng)
    if not np.asarray(board).any():  # no plate: the text must stand out from the photo itself
        plate_colour = bg.mean((0, 1))
        lum = float(plate_colour.mean())
        text_colour = np.full(3, rng.uniform(0, 0.15) if lum > 0.5 else rng.uniform(0.85, 1.0))
    p, m = (np.asarray(a, dtype=np.float32)[..., None] / 255 for a in (board, ink))
    img = (bg * (1 - p) + plate_colour * p) * (1 - m) + text_colour * m
    out = Image.fromarray((img * 255).round().astype(np.uint8))
    out = out.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.0))))
    out = ImageEnhance.Brightness(out).enhance(float(rng.uniform(0.7, 1.3)))
    return ImageEnhance.Contrast(out).enhance(float(rng.uniform(0.6, 1.2)))


def _random_number(rng: np.random.Generator, lengths: tuple[int, int]) -> str:
    n = int(rng.integers(lengths[0], lengths[1] + 1))
    first = str(rng.integers(1, 10)) if n > 1 else str(rng.integers(0, 10))
    return first + "".join(str(d) for d in rng.integers(0, 10, n - 1))


def generate_house_numbers(
    n: int,
    split: str = "train",
    *,
    seed: int = 0,
    lengths: tuple[int, int] = (1, 5),
    handwritten: float = 0.25,
    plate: float = 0.6,
    size: tuple[int, int] = (128, 32),
    pictures: Sequence[Image.Image] | None = None,
    download: bool | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """``n`` random street numbers for ``split`` (no cache; see :func:`house_numbers`).

    Lengths are uniform in ``lengths`` (inclusive); numbers longer than one digit do not
    start with 0. The output depends only on the arguments. ``pictures``: RGB images to crop
    backgrounds from (default: d2l's and scikit-image's photos, see
    :func:`~d2lcv.data.photo_paths`).

    Returns:
        ``(images uint8 [n, H, W, 3], labels)``, labels the n digit strings.
    """
    _check(n, split, lengths, handwritten)
    rng = np.random.default_rng([seed, _SPLIT_SEED[split]])
    if pictures is None:
        pictures = background_pools(["photos"], download)["photos"]
    fonts = house_number_fonts()
    digits = handwritten_digits(split) if handwritten > 0 else None
    images = np.zeros((n, size[1], size[0], 3), dtype=np.uint8)
    labels = []
    for i in progress_bar(range(n), progress, desc=f"house numbers ({split})", leave=False):
        labels.append(_random_number(rng, lengths))
        images[i] = np.asarray(render_house_number(labels[-1], rng, pictures, fonts=fonts, digits=digits,
                                                   handwritten=handwritten, plate=plate, size=size))
    return images, labels


def _check(n: int, split: str, lengths: tuple[int, int], handwritten: float) -> None:
    if split not in HOUSE_NUMBER_SPLITS:
        raise ValueError(f"split must be one of {HOUSE_NUMBER_SPLITS}, got {split!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    if not 1 <= lengths[0] <= lengths[1]:
        raise ValueError(f"lengths must be (min, max) with 1 <= min <= max, got {lengths}")
    if not 0 <= handwritten <= 1:
        raise ValueError(f"handwritten must be a probability in [0, 1], got {handwritten}")


def house_numbers(
    split: str,
    sizes: dict[str, int] | None = None,
    *,
    seed: int = 0,
    lengths: tuple[int, int] = (1, 5),
    handwritten: float = 0.25,
    plate: float = 0.6,
    size: tuple[int, int] = (128, 32),
    download: bool | None = None,
    progress: bool = True,
) -> tuple[Tensor, list[str]]:
    """One split of the street-number dataset, generated on first use and cached.

    All splits of ``sizes`` are generated together and saved to
    ``<cache>/house-numbers/v<version>-seed<seed>-<digest>.npz`` (atomically); later calls
    with the same arguments read that file.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        sizes: numbers per split (default ``{"train": 10000, "val": 1000, "test": 2000}``).
        seed, lengths, handwritten, plate, size: see :func:`generate_house_numbers`.

    Returns:
        ``(images uint8 Tensor[N, 3, H, W], labels)``, labels N digit strings.
    """
    sizes = dict(sizes or {"train": 10000, "val": 1000, "test": 2000})
    bad = [s for s in sizes if s not in HOUSE_NUMBER_SPLITS]
    if bad or split not in sizes:
        raise ValueError(f"sizes must map splits of {HOUSE_NUMBER_SPLITS} to counts and include "
                         f"split={split!r}, got {sizes}")
    settings = dict(sizes=sizes, seed=seed, lengths=list(lengths), handwritten=handwritten, plate=plate,
                    size=list(size))
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    path = cache_dir() / "house-numbers" / f"v{HOUSE_NUMBERS_VERSION}-seed{seed}-{digest}.npz"
    if not path.exists():
        arrays = {}
        for name, n in sizes.items():
            images, labels = generate_house_numbers(n, name, seed=seed, lengths=lengths, handwritten=handwritten,
                                                    plate=plate, size=size, download=download, progress=progress)
            arrays[f"{name}_images"], arrays[f"{name}_labels"] = images, np.array(labels, dtype="<U8")
        with atomic_write(path) as f:
            np.savez(f, **arrays)
    with np.load(path) as data:
        images, labels = data[f"{split}_images"], data[f"{split}_labels"]
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), [str(s) for s in labels]
