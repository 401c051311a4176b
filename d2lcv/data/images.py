"""Small named images and texts: d2l's sample photos, style-transfer paintings and content
photos, Noto emoji, and The Time Machine. Each comes from :func:`~d2lcv.data.fetch`.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

from PIL import Image

from .cache import MIRROR_ENV, DatasetNotFoundError, cache_dir
from .registry import EMOJI_SHA256, REGISTRY, dataset_info, fetch

__all__ = [
    "PHOTOS",
    "PAINTINGS",
    "CONTENT_PHOTOS",
    "EMOJI_NAMES",
    "photo_path",
    "photo_paths",
    "load_image",
    "painting",
    "content_photo",
    "emoji",
    "emoji_codepoints",
    "timemachine",
]


def _names(prefix: str) -> tuple[str, ...]:
    return tuple(n[len(prefix):] for n in REGISTRY if n.startswith(prefix))


PHOTOS: tuple[str, ...] = _names("d2l-img/")
"""d2l's sample photos: cat1.jpg, catdog.jpg, rainier.jpg, autumn-oak.jpg, banana.jpg."""
PAINTINGS: tuple[str, ...] = tuple(Path(n).stem for n in _names("style-transfer/paintings/"))
"""Public-domain style images, by file stem (e.g. ``"starry_night"``)."""
CONTENT_PHOTOS: tuple[str, ...] = tuple(Path(n).stem for n in _names("style-transfer/content/"))
"""CC0/public-domain content photos from scikit-image: astronaut, chelsea, coffee, rocket."""

EMOJI_NAMES: Mapping[str, str] = MappingProxyType({
    "apple": "1f34e", "banana": "1f34c", "grapes": "1f347", "lemon": "1f34b",
    "strawberry": "1f353", "watermelon": "1f349", "pear": "1f350", "cherries": "1f352",
    "peach": "1f351", "orange": "1f34a", "pineapple": "1f34d", "kiwi": "1f95d",
    "tomato": "1f345", "carrot": "1f955", "broccoli": "1f966",
})
"""Fruit and vegetable names -> Noto emoji codepoints (each downloadable one by one)."""

_EMOJI_MEMBER = "noto-emoji/png/72/emoji_u{}.png"


def _filename(name: str, prefix: str, what: str) -> str:
    """The registry file name for ``name``, given with or without its extension."""
    files = [n[len(prefix):] for n in REGISTRY if n.startswith(prefix)]
    for f in files:
        if name in (f, Path(f).stem):
            return f
    raise ValueError(f"unknown {what} {name!r}; choose from {', '.join(Path(f).stem for f in files)}")


def photo_path(name: str, *, download: bool | None = None) -> Path:
    """The local path of one of d2l's sample photos (see :data:`PHOTOS`), e.g. ``"cat1.jpg"``."""
    filename = _filename(name, "d2l-img/", "photo")
    return fetch(f"d2l-img/{filename}", download=download)


def photo_paths(*, download: bool | None = None) -> dict[str, Path]:
    """``{name: path}`` for every one of d2l's sample photos."""
    return {name: photo_path(name, download=download) for name in PHOTOS}


def _open(path: Path, mode: str) -> Image.Image:
    with Image.open(path) as im:
        return im.convert(mode)


def load_image(name: str, mode: str = "RGB", *, download: bool | None = None) -> Image.Image:
    """One of d2l's sample photos as a PIL image, e.g. ``load_image("catdog.jpg")``."""
    return _open(photo_path(name, download=download), mode)


def painting(name: str, mode: str = "RGB", *, download: bool | None = None) -> Image.Image:
    """A public-domain painting (see :data:`PAINTINGS`), e.g. ``painting("starry_night")``."""
    filename = _filename(name, "style-transfer/paintings/", "painting")
    return _open(fetch(f"style-transfer/paintings/{filename}", download=download), mode)


def content_photo(name: str, mode: str = "RGB", *, download: bool | None = None) -> Image.Image:
    """A content photo (see :data:`CONTENT_PHOTOS`), e.g. ``content_photo("chelsea")``."""
    filename = _filename(name, "style-transfer/content/", "content photo")
    return _open(fetch(f"style-transfer/content/{filename}", download=download), mode)


def _codepoint(spec: str) -> str:
    if not isinstance(spec, str):
        raise TypeError(f"an emoji is a name or a hex codepoint string, got {type(spec).__name__}")
    s = spec.strip().lower()
    if s in EMOJI_NAMES:
        return EMOJI_NAMES[s]
    s = s.removeprefix("emoji_u").removesuffix(".png").replace("u+", "").replace("-", "_").replace(" ", "_")
    parts = s.split("_")
    if not all(parts) or not all(all(ch in "0123456789abcdef" for ch in p) and len(p) <= 6 for p in parts):
        raise ValueError(
            f"emoji must be a name ({', '.join(EMOJI_NAMES)}) or hex codepoints like '1f34c' "
            f"or '1f1fa_1f1f8', got {spec!r}"
        )
    return "_".join(p if len(p) >= 4 else p.zfill(4) for p in parts)


def _emoji_zip(download: bool | None) -> Path | None:
    try:
        return fetch("noto-emoji-72", download=download)
    except DatasetNotFoundError:
        return None


def emoji_codepoints(*, download: bool | None = None) -> list[str]:
    """Every codepoint in the Noto emoji zip (cache or mirror), sorted; e.g. ``"1f34c"``.

    Raises:
        DatasetNotFoundError: the zip is in neither the cache nor the mirror.
    """
    path = fetch("noto-emoji-72", download=download)
    prefix, suffix = _EMOJI_MEMBER.split("{}")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return sorted(n[len(prefix):-len(suffix)] for n in names if n.startswith(prefix) and n.endswith(suffix))


def emoji(
    codepoints: str | Iterable[str], *, size: int | None = None, download: bool | None = None
) -> list[Image.Image]:
    """Noto Color Emoji as 72x72 RGBA PIL images (transparent background).

    Each emoji is looked for as a single cached PNG, then inside the Noto zip (cache or
    ``$D2LCV_MIRROR``), then downloaded one by one (only those in :data:`EMOJI_NAMES`
    have a pinned checksum to download against).

    Args:
        codepoints: one or more names (``"banana"``) or hex codepoints (``"1f34c"``,
            ``"U+1F34C"``, ``"1f1fa_1f1f8"`` for a flag).
        size: resize to ``size x size`` (bilinear) if given.

    Returns:
        list of PIL images, mode ``RGBA``, in the order asked.

    Raises:
        ValueError: a malformed name/codepoint, or one that is not in the emoji set.
        DatasetNotFoundError: an emoji could be found nowhere.
    """
    specs = [codepoints] if isinstance(codepoints, str) else list(codepoints)
    cps = [_codepoint(s) for s in specs]
    if size is not None and size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    archive: Path | None = None
    opened: zipfile.ZipFile | None = None  # the Noto zip, opened once for all emoji asked
    images = []
    for cp, spec in zip(cps, specs):
        name = f"noto-emoji-72/{cp}"
        data: bytes | Path
        if name in REGISTRY and _cached_single(name):
            data = fetch(name, download=False)
        else:
            archive = archive or _emoji_zip(download=False)
            if archive is not None:
                opened = opened or zipfile.ZipFile(archive)
                try:
                    data = opened.read(_EMOJI_MEMBER.format(cp))
                except KeyError:
                    opened.close()
                    raise ValueError(f"emoji {spec!r} (U+{cp.upper()}) is not in {archive}") from None
            elif name in REGISTRY:
                data = fetch(name, download=download)
            else:
                raise DatasetNotFoundError(
                    f"emoji {spec!r} (U+{cp.upper()}): the Noto zip is neither cached nor in the "
                    f"mirror, and only {', '.join(EMOJI_NAMES)} ({', '.join(EMOJI_SHA256)}) can be "
                    f"downloaded one by one. To fix: put noto-emoji-png72.zip in "
                    f"{cache_dir() / 'noto-emoji-72'} or set ${MIRROR_ENV} to a folder holding "
                    f"{REGISTRY['noto-emoji-72'].mirror[0].path}"
                )
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
            im = im.convert("RGBA")
        images.append(im if size is None else im.resize((size, size), Image.Resampling.BILINEAR))
    if opened is not None:
        opened.close()
    return images


def _cached_single(name: str) -> bool:
    try:
        fetch(name, download=False)
    except DatasetNotFoundError:
        return False
    return True


def timemachine(*, download: bool | None = None) -> str:
    """The full text of H. G. Wells' *The Time Machine* (d2l's corpus), 178,979 characters."""
    return fetch(dataset_info("timemachine"), download=download).read_text(encoding="utf-8")
