"""Where AIPP reads and writes: source size, crop box, padding, output size, input tensor shape."""

from __future__ import annotations

from dataclasses import dataclass

from infer_kit.aipp.config import AippOp
from infer_kit.errors import InferKitError

# Channels of one source pixel in memory, and bytes per pixel (YUV420SP: 1.5).
SOURCE_CHANNELS = {"RGB888_U8": 3, "XRGB8888_U8": 4, "YUV400_U8": 1, "YUV420SP_U8": 1}
OUTPUT_CHANNELS = {"RGB888_U8": 3, "XRGB8888_U8": 3, "YUV400_U8": 1, "YUV420SP_U8": 3}
EMULATED_FORMATS = tuple(SOURCE_CHANNELS)


@dataclass(frozen=True)
class Geometry:
    """The pixel boxes of one AIPP op, with zeros resolved against the model input."""

    src_h: int
    src_w: int
    top: int
    left: int
    crop_h: int
    crop_w: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int

    @property
    def out_h(self) -> int:
        return self.crop_h + self.pad_top + self.pad_bottom

    @property
    def out_w(self) -> int:
        return self.crop_w + self.pad_left + self.pad_right

    @property
    def padded(self) -> bool:
        return any((self.pad_top, self.pad_bottom, self.pad_left, self.pad_right))


def resolve_geometry(op: AippOp, model_hw: tuple[int, int] | None = None) -> Geometry:
    """The op's boxes; sizes of 0 take the model's H/W as ATC does (``model_hw`` then required)."""

    def from_model(axis: int, what: str) -> int:
        if model_hw is None:
            raise InferKitError(
                f"AIPP config leaves {what} at 0 (= the model input size), and no model size is known",
                hint="give src_image_size_w/h in the config, or a model (--model)",
            )
        return int(model_hw[axis])

    src_h = int(op.get("src_image_size_h")) or from_model(0, "src_image_size_h")
    src_w = int(op.get("src_image_size_w")) or from_model(1, "src_image_size_w")
    if op.get("crop"):
        top, left = int(op.get("load_start_pos_h")), int(op.get("load_start_pos_w"))
        crop_h = int(op.get("crop_size_h")) or from_model(0, "crop_size_h")
        crop_w = int(op.get("crop_size_w")) or from_model(1, "crop_size_w")
    else:
        top, left, crop_h, crop_w = 0, 0, src_h, src_w
    pads = [int(op.get(f"{side}_padding_size")) for side in ("top", "bottom", "left", "right")]
    return Geometry(src_h, src_w, top, left, crop_h, crop_w, *pads)


def source_shape(op: AippOp, geometry: Geometry) -> tuple[int, int, int]:
    """Shape of one source image as the emulation takes it (HWC; YUV420SP: NV12 rows x W x 1)."""
    fmt = op.input_format
    if fmt not in SOURCE_CHANNELS:
        raise InferKitError(
            f"infer-kit cannot emulate AIPP input_format {fmt}",
            hint=f"emulated formats: {', '.join(EMULATED_FORMATS)}",
        )
    if fmt == "YUV420SP_U8":
        return (geometry.src_h * 3 // 2, geometry.src_w, 1)
    return (geometry.src_h, geometry.src_w, SOURCE_CHANNELS[fmt])


def output_channels(op: AippOp) -> int:
    return OUTPUT_CHANNELS.get(op.input_format, 3)
