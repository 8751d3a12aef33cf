"""The AIPP config a compile uses: generated from the spec, or the user's file, checked as ATC checks it.

A generated config is written beside the artifacts only once it passed ATC's checks against
the model's input; the artifact's manifest then records the spec its input files must follow
(:func:`spec_for_source`).
"""

from __future__ import annotations

from pathlib import Path

from infer_kit.aipp import (
    AippConfig,
    AippOp,
    describe_generated,
    errors,
    generate_op,
    lint_config,
    raise_for_errors,
    read_config,
    render_config,
    resolve_geometry,
    source_shape,
    validate_config,
)
from infer_kit.console import log
from infer_kit.converter.emulate import ModelInput
from infer_kit.errors import InferKitError
from infer_kit.fsutil import read_text, write_text_atomic
from infer_kit.spec import PreprocessSpec


def choose_aipp(aipp: str, model_path: Path, out_dir: Path, spec: PreprocessSpec | None, model_in: ModelInput,
                input_hw: tuple[int, int], soc: str, emulate: bool,
                whole_image: bool = False) -> tuple[AippOp | None, str | None, Path | None]:
    """(op, config text, config path) for ``aipp`` = "auto" | "none" | a file; validated against the model.

    ``whole_image`` (a dynamic image size): a generated config neither crops nor sets the source
    size (0: each gear's H x W), as ATC requires; the input files are then the crop itself.
    """
    if aipp == "none":
        return None, None, None
    chw = (model_in.channels or 3, input_hw[0], input_hw[1])
    if aipp == "auto":
        if spec is None:
            raise InferKitError(f"{model_path.name} carries no preprocessing spec, so no AIPP config can be generated",
                                hint="export it with 'infer-kit export', give --preset/--resize/--crop, "
                                     "or use --aipp FILE or --aipp none")
        if whole_image:
            op = generate_op(spec.with_overrides(aipp_geometry="crop")).replace(src_image_size_w=0,
                                                                               src_image_size_h=0)
            header = [*describe_generated(spec, op)[:2], "source: the whole image of each --dynamic_image_size gear "
                      "(src_image_size 0, no crop): the input files are the centre crop itself",
                      describe_generated(spec, op)[-1]]
        else:
            op = generate_op(spec)
            header = describe_generated(spec, op)
        text = render_config(op, header=header)
        path = out_dir / f"aipp_{model_path.stem}{'_dynhw' if whole_image else ''}.aippconfig"
        config = AippConfig((op,), str(path))
    else:
        path = Path(aipp).absolute()
        config = read_config(path)
        text = read_text(path, what="AIPP config")
    issues = validate_config(config, inputs=[chw], soc=soc)
    if aipp == "auto" and errors(issues):
        assert spec is not None
        raise InferKitError(
            f"the AIPP config generated from {model_path.name}'s spec ({spec.describe()}) does not fit its input "
            f"{chw[1]}x{chw[2]}: {errors(issues)[0].text()}",
            hint=f"the spec must crop {chw[1]}: fix it (--crop/--resize) or re-export the model",
        )
    raise_for_errors(issues, config.where)
    op = config.op_for_input(0, model_in.name)
    if (op is None or op.mode == "static") and not whole_image:  # (a whole-image source has no spec geometry)
        for issue in lint_config(config, spec=spec):
            log.warning("%s", issue.format(config.where).replace(": warning: ", ": ", 1))
    if op is None:
        raise InferKitError(f"{config.where} has no aipp_op block for input 0 ({model_in.name})",
                            hint="set related_input_rank: 0")
    if aipp == "auto" and (not path.is_file() or path.read_text() != text):
        write_text_atomic(path, text)  # only once the generated config passed ATC's checks
    if emulate and op.mode == "static":
        source_shape(op, resolve_geometry(op, input_hw))  # refuses formats the emulation does not cover
        if whole_image and op.input_format == "YUV420SP_U8":
            raise InferKitError(f"{config.where}: the emulation cannot run YUV420SP_U8 AIPP on a dynamic image size",
                                hint="use RGB888_U8 (or XRGB8888_U8, YUV400_U8) for the emulated artifact")
    return op, text, path


def spec_for_source(spec: PreprocessSpec | None, op: AippOp | None,
                    input_hw: tuple[int, int]) -> PreprocessSpec | None:
    """The spec the artifact's input files must follow, its aipp geometry fixed to what the config reads.

    A config that reads the ``resize`` square (cropping it) gets ``square``; one that reads a
    ``crop x crop`` source without cropping gets ``crop`` (the centre crop of the resized image
    itself, as the ModelZoo's Inception configs read it). Any other square size is recorded as
    the resize (e.g. 224x224 with no crop for a 232/224 spec): the manifest then records what the
    artifact takes, so ``preprocess --for`` writes, and ``run`` accepts, exactly that. A non-square
    or non-RGB source cannot be written by ``preprocess``: warned.
    """
    if spec is None or op is None or op.mode != "static":
        return spec
    geometry = resolve_geometry(op, input_hw)
    size = f"{geometry.src_w}x{geometry.src_h}"
    if op.input_format != "RGB888_U8" or geometry.src_h != geometry.src_w or geometry.src_h < spec.crop:
        log.warning("the AIPP config reads %s %s sources, which 'infer-kit preprocess' does not write: prepare the "
                    "input files yourself", op.input_format, size)
        return spec
    side = geometry.src_h
    cropped = (geometry.crop_h, geometry.crop_w) != (side, side)
    if side == spec.crop and not cropped and spec.crop != spec.resize:
        return spec if spec.geometry == "crop" else spec.with_overrides(aipp_geometry="crop")
    if side == spec.resize:
        return spec if spec.geometry == "square" else spec.with_overrides(aipp_geometry="square")
    log.warning("the AIPP config reads %s sources but the spec resizes to %d: the manifest records resize %d "
                "so that preprocessed files match the artifact", size, spec.resize, side)
    return spec.with_overrides(resize=side, aipp_geometry="square")
