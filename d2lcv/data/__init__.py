"""Layer 3, data: datasets for the book: a registry with checksums and licences, a cache/mirror/download
lookup (:func:`fetch`), safe archive extraction, CIFAR-10, and small named images.

Environment variables: ``D2LCV_DATA`` (cache folder), ``D2LCV_MIRROR`` (read-only offline
mirror), ``D2LCV_OFFLINE=1`` (no downloads). See :mod:`d2lcv.data.cache`
and :mod:`d2lcv.data.archive`.
"""

from __future__ import annotations

from .archive import ArchiveError, ArchiveTooLargeError, UnsafeArchiveError, extract, read_member
from .cifar10 import CIFAR10, CIFAR10_CLASSES, cifar_subset, read_cifar10_archive
from .detection import BananaDetection, DetectionDataset, EmojiDetection, detection_collate
from .detection_stats import DetectionStatistics, detection_statistics
from .cache import (
    DATA_ENV,
    MIRROR_ENV,
    OFFLINE_ENV,
    ChecksumError,
    DatasetNotFoundError,
    DownloadError,
    cache_dir,
    check_file,
    download,
    downloads_enabled,
    file_checksum,
    mirror_dir,
    parse_checksum,
)
from .emoji_scenes import EMOJI_DETECTION_CLASSES, SceneSettings, compose_scene, generate_emoji_detection
from .scene_presets import (
    DISTRACTOR_EMOJI,
    HARD_EMOJI_CLASSES,
    HARD_SCENES,
    SCENE_EMOJI,
    check_distractors,
    paste_order,
    scene_emoji_codes,
)
from .hotdog import HOTDOG_CLASSES, Hotdog
from .images import (
    CONTENT_PHOTOS,
    EMOJI_NAMES,
    PAINTINGS,
    PHOTOS,
    content_photo,
    emoji,
    emoji_codepoints,
    load_image,
    painting,
    photo_path,
    photo_paths,
    timemachine,
)
from .registry import REGISTRY, DatasetInfo, MirrorFile, Resource, dataset_info, fetch
from .house_numbers import (
    HOUSE_NUMBER_FONTS,
    HOUSE_NUMBER_SPLITS,
    HOUSE_NUMBERS_VERSION,
    generate_house_numbers,
    handwritten_digits,
    house_number_fonts,
    house_numbers,
    render_house_number,
)
from .subsets import balanced_indices, class_indices
from .svhn import SVHN_SPLITS, read_svhn_mat, svhn, svhn_info
from .text import LMLoader, Vocab, split_corpus, tokenize
from .tensors import AugmentedImages
from .toy2d import circle, gaussian_mixture, grid_centers, grid_of_gaussians, ring_centers, ring_of_gaussians

__all__ = [
    # locations and environment
    "DATA_ENV", "MIRROR_ENV", "OFFLINE_ENV", "cache_dir", "mirror_dir", "downloads_enabled",
    # errors
    "DatasetNotFoundError", "DownloadError", "ChecksumError", "ArchiveError", "UnsafeArchiveError",
    "ArchiveTooLargeError",
    # files
    "parse_checksum", "file_checksum", "check_file", "download", "extract", "read_member",
    # registry
    "Resource", "MirrorFile", "DatasetInfo", "REGISTRY", "dataset_info", "fetch",
    # datasets
    "CIFAR10", "CIFAR10_CLASSES", "cifar_subset", "read_cifar10_archive",
    "balanced_indices", "class_indices", "AugmentedImages",
    "Hotdog", "HOTDOG_CLASSES",
    "DetectionDataset", "EmojiDetection", "EMOJI_DETECTION_CLASSES", "BananaDetection", "detection_collate",
    "DetectionStatistics", "detection_statistics",
    "SceneSettings", "compose_scene", "generate_emoji_detection",
    "HARD_SCENES", "HARD_EMOJI_CLASSES", "DISTRACTOR_EMOJI", "SCENE_EMOJI", "scene_emoji_codes",
    "check_distractors", "paste_order",
    "PHOTOS", "PAINTINGS", "CONTENT_PHOTOS", "EMOJI_NAMES",
    "photo_path", "photo_paths", "load_image", "painting", "content_photo",
    "emoji", "emoji_codepoints", "timemachine",
    "tokenize", "Vocab", "split_corpus", "LMLoader",
    "HOUSE_NUMBER_FONTS", "HOUSE_NUMBER_SPLITS", "HOUSE_NUMBERS_VERSION", "house_number_fonts", "handwritten_digits",
    "render_house_number", "generate_house_numbers", "house_numbers",
    "SVHN_SPLITS", "svhn_info", "read_svhn_mat", "svhn",
    # 2-D toy distributions
    "ring_centers", "grid_centers", "gaussian_mixture", "ring_of_gaussians", "grid_of_gaussians", "circle",
]
