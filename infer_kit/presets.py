"""The ModelZoo preprocessing presets (``imagenet_torch_preprocess.py <preset>``).

All use PIL bilinear resizing of the short side and a centre crop. ``efficientnetB3`` and
``efficientnetB5`` write their planes in BGR order: the seed EfficientNet was trained with
pycls, which decodes with OpenCV, so its checkpoints expect BGR input.
"""

from __future__ import annotations

from infer_kit.errors import InferKitError
from infer_kit.spec import PreprocessSpec

PRESETS: dict[str, PreprocessSpec] = {
    "resnet": PreprocessSpec(resize=256, crop=224),
    "inceptionv3": PreprocessSpec(resize=342, crop=299),
    "inceptionv4": PreprocessSpec(resize=342, crop=299, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    "efficientnetB3": PreprocessSpec(resize=342, crop=300, channel_order="BGR"),
    "efficientnetB5": PreprocessSpec(resize=522, crop=456, channel_order="BGR"),
    "dpn131": PreprocessSpec(resize=256, crop=224, mean=(0.486, 0.459, 0.408), std=(0.235, 0.235, 0.235)),
}


def get_preset(name: str) -> PreprocessSpec:
    """The spec of a ModelZoo preset, by its script name."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InferKitError(f"unknown preset {name!r}", hint=f"use one of {', '.join(PRESETS)}") from None
