"""EfficientNet geometry read off a checkpoint's tensors, and the timm model of exactly that geometry.

pycls and EfficientNet-PyTorch checkpoints of the standard sizes load into timm's registered
models (``efficientnet_b3``, ``tf_efficientnet_lite0``, ...). A reduced model (the test fixtures,
or a user's own width/depth) has no registered name, so the same timm ``EfficientNet`` class is
built from the geometry instead: per stage the block kind (depthwise-separable without an
expansion conv, inverted residual with one), repeats, kernel, stride, expansion, output width
and SE ratio, plus stem and head widths. Strides are not stored in weights: they come from the
checkpoint's config where it has one (pycls), else EfficientNet's ``1, 2, 2, 2, 1, 2, 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

EFFICIENTNET_STRIDES = (1, 2, 2, 2, 1, 2, 1)


@dataclass(frozen=True)
class Stage:
    repeats: int
    kernel: int
    stride: int
    expansion: int  # 1: depthwise-separable block (no expansion conv)
    width: int
    se_ratio: float | None  # of the block's input width; None: no squeeze-excite

    def arch_def(self) -> str:
        """timm's block string, e.g. ``ir_r2_k3_s2_e6_c24_se0.25``."""
        kind = "ds" if self.expansion == 1 else "ir"
        se = f"_se{self.se_ratio:g}" if self.se_ratio else ""
        return f"{kind}_r{self.repeats}_k{self.kernel}_s{self.stride}_e{self.expansion}_c{self.width}{se}"


@dataclass(frozen=True)
class Geometry:
    stages: tuple[Stage, ...]
    stem: int
    head: int

    @property
    def depths(self) -> list[int]:
        return [s.repeats for s in self.stages]

    def describe(self) -> str:
        return (f"stem {self.stem}, stages {' '.join(s.arch_def() for s in self.stages)}, head {self.head}")

    def build(self, *, num_classes: int, act: str, bn_eps: float, pad_type: str) -> torch.nn.Module:
        """timm's EfficientNet with this geometry (widths used as they are, no rounding)."""
        import torch
        from timm.layers import get_act_layer, set_layer_config
        from timm.models._efficientnet_builder import decode_arch_def, round_channels
        from timm.models.efficientnet import EfficientNet

        with set_layer_config(exportable=True):
            return EfficientNet(
                block_args=decode_arch_def([[s.arch_def()] for s in self.stages]), num_classes=num_classes,
                num_features=self.head, stem_size=self.stem, fix_stem=True, pad_type=pad_type,
                act_layer=get_act_layer(act), norm_layer=partial(torch.nn.BatchNorm2d, eps=bn_eps),
                round_chs_fn=partial(round_channels, multiplier=None),
            )
