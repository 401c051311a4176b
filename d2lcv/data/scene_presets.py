"""The harder emoji-scene preset (for the detection II chapter): its classes, its
unlabelled distractors and its settings, and the helpers that add distractors to a
scene.

:meth:`~d2lcv.data.SceneSettings.hard` builds the settings from :data:`HARD_SCENES`; the
easy default of :class:`~d2lcv.data.SceneSettings` has no distractors and is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "SCENE_EMOJI",
    "HARD_EMOJI_CLASSES",
    "DISTRACTOR_EMOJI",
    "HARD_SCENES",
    "scene_emoji_codes",
    "check_distractors",
    "paste_order",
]

SCENE_EMOJI: MappingProxyType[str, str] = MappingProxyType(
    {
        "avocado": "1f951",
        "eggplant": "1f346",
        "corn": "1f33d",
        "mushroom": "1f344",
        "hot_pepper": "1f336",
        "cookie": "1f36a",
        "doughnut": "1f369",
        "cake": "1f370",
        "egg": "1f95a",
        "bread": "1f35e",
        "croissant": "1f950",
        "cheese": "1f9c0",
        "chestnut": "1f330",
        "coconut": "1f965",
        "soccer_ball": "26bd",
        "balloon": "1f388",
        "star": "2b50",
        "clover": "1f340",
    }
)
"""Emoji names the scenes use beyond :data:`~d2lcv.data.EMOJI_NAMES` -> Noto
codepoints."""

HARD_EMOJI_CLASSES: tuple[str, ...] = (
    "apple",
    "banana",
    "grapes",
    "kiwi",
    "carrot",
    "lemon",
    "strawberry",
    "watermelon",
    "pear",
    "cherries",
    "peach",
    "orange",
    "pineapple",
    "tomato",
    "broccoli",
    "avocado",
    "eggplant",
    "corn",
    "mushroom",
    "hot_pepper",
)
"""The hard preset's 20 classes (as many as PASCAL VOC): the five easy ones, then
fifteen more, several alike in colour (apple, tomato, cherries, strawberry; peach,
orange)."""

DISTRACTOR_EMOJI: tuple[str, ...] = (
    "cookie",
    "doughnut",
    "cake",
    "egg",
    "bread",
    "croissant",
    "cheese",
    "chestnut",
    "coconut",
    "soccer_ball",
    "balloon",
    "star",
    "clover",
)
"""Unlabelled emoji the hard preset pastes as clutter: a detector must not report
them."""

HARD_SCENES: MappingProxyType[str, Any] = MappingProxyType(
    dict(
        sizes={"train": 2000, "val": 300, "test": 300},
        classes=HARD_EMOJI_CLASSES,
        image_size=192,
        num_objects=(1, 12),
        object_size=(0.06, 0.6),
        max_occlusion=0.6,
        distractors=DISTRACTOR_EMOJI,
        num_distractors=(0, 3),
    )
)
"""The harder preset's :class:`~d2lcv.data.SceneSettings` fields: 20 classes on 192x192
images, 1 to 12 objects from 6% to 60% of the image side, up to 60% of an object hidden
(the easy set: 40%), 0 to 3 unlabelled distractors, 2000/300/300 images."""


def scene_emoji_codes(names: Sequence[str]) -> list[str]:
    """``names`` with those of :data:`SCENE_EMOJI` replaced by their codepoints (the
    rest, names of :data:`~d2lcv.data.EMOJI_NAMES` or codepoints, as they are)."""
    return [SCENE_EMOJI.get(n, n) for n in names]


def check_distractors(
    distractors: Sequence[Any], num_distractors: tuple[int, int]
) -> None:
    """Raise ``ValueError`` unless ``num_distractors`` is ``(min, max)``, ``0 <= min <=
    max``, and there are ``distractors`` to draw from when ``max > 0``."""
    if len(num_distractors) != 2 or not 0 <= num_distractors[0] <= num_distractors[1]:
        raise ValueError(
            f"num_distractors must be (min, max) with 0 <= min <= max, got {num_distractors}"
        )
    if num_distractors[1] > 0 and not distractors:
        raise ValueError(
            f"num_distractors={num_distractors} needs distractors; got none"
        )


def paste_order(
    num_objects: tuple[int, int],
    num_distractors: tuple[int, int],
    rng: np.random.Generator,
) -> list[bool]:
    """True for each labelled object, False for each distractor, in the order of
    pasting.

    Draws the number of objects, then (only when ``num_distractors[1] > 0``) the number
    of distractors and a shuffle: without distractors a scene takes exactly the random
    numbers it took before distractors existed.
    """
    order = [True] * int(rng.integers(num_objects[0], num_objects[1] + 1))
    if num_distractors[1] > 0:
        order += [False] * int(rng.integers(num_distractors[0], num_distractors[1] + 1))
        rng.shuffle(order)
    return order
