"""Loading a checkpoint's weights into its architecture, strictly, whichever codebase wrote it.

The file is read once (a MindSpore ``.ckpt`` without MindSpore; anything else with the core's
weights-only loader, :func:`infer_kit.checkpoint.read_checkpoint`, which refuses pickles that
need arbitrary code unless the user trusts them). Its *source* (``--from``, see
:mod:`infer_kit.converter.sources`) renames and converts the tensors into the target timm
model's, builds that model and patches it where the source's code computes something else.
The weights are then loaded *strictly*: a tensor no rule covers, a tensor for a key the model
does not have, a model key left unfilled or a shape that differs is an error naming the source
key and the target key, never a model that silently keeps random weights (the ModelZoo's
``strict=False`` failure).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infer_kit.console import log
from infer_kit.errors import InferKitError
from infer_kit.fsutil import sha256_file
from infer_kit.registry import ModelEntry, create_model, get_model
from infer_kit.spec import PreprocessSpec

from .sources import AUTO, Conversion, auto_would_choose, choose_source, read_checkpoint_file

if TYPE_CHECKING:
    import torch

_SHOW = 3


@dataclass(frozen=True)
class CheckpointInfo:
    """Where the weights came from, which source read them, and what the checkpoint recorded."""

    path: Path
    sha256: str
    layout: str
    arch: str | None = None
    num_classes: int | None = None
    spec: PreprocessSpec | None = None
    classes: list[str] | None = None
    stripped_prefix: str | None = None
    source: str = "pytorch"
    source_reason: str = ""
    chosen_by: str = AUTO  # "auto" or "--from"
    variant: str | None = None  # a geometry the registry arch does not have (reduced depth/width)
    notes: tuple[str, ...] = ()  # what the conversion did (renames, widened dtypes, patches)
    extra: dict[str, Any] = field(default_factory=dict)

    def describe_source(self) -> str:
        how = f"auto: {self.source_reason}" if self.chosen_by == AUTO else "--from"
        return f"{self.source} ({how})"


def classifier_key(model: torch.nn.Module) -> str | None:
    """Name of the classifier head's weight in ``model.state_dict()`` (timm models)."""
    get_classifier = getattr(model, "get_classifier", None)
    head = get_classifier() if callable(get_classifier) else None
    if head is None:
        return None
    for name, module in model.named_modules():
        if module is head and hasattr(module, "weight"):
            return f"{name}.weight"
    return None


def load_checkpoint_model(
    arch: str | None,
    path: str | os.PathLike[str],
    *,
    source: str = AUTO,
    num_classes: int | None = None,
    trust: bool = False,
    use_ema: bool = False,
) -> tuple[torch.nn.Module, CheckpointInfo]:
    """Build the checkpoint's model and load its weights strictly; return (model in eval mode, info).

    ``source`` is ``auto`` or a name of :data:`~infer_kit.converter.sources.SOURCES`. ``arch`` may
    be None when the checkpoint records one (infer-kit and pytorch/examples checkpoints) or its
    source knows its target (the seeds' codebases). The class count is read from the classifier
    head unless given.
    """
    path = Path(path)
    file = read_checkpoint_file(path, trust=trust)
    chosen, detection = choose_source(file, source)
    if source == AUTO:
        log.debug("checkpoint %s: source %s (%s)", path, chosen.name, detection.reason)
    try:
        conversion = chosen.convert(file, arch=arch, use_ema=use_ema)
        entry = get_model(conversion.arch)
        model = conversion.build() if conversion.build is not None else create_model(entry)
        head = classifier_key(model)
        inferred = int(conversion.tensors[head].shape[0]) if head and head in conversion.tensors else None
        classes = num_classes or inferred or conversion.num_classes or 1000
        if classes != _head_size(model, head):
            model.reset_classifier(classes)
        notes = list(conversion.notes)
        for patch in conversion.patches:
            changed = patch.apply(model)
            notes.append(f"patched {changed} module(s): {patch.description}")
        _load_strict(model, conversion, path=path, entry=entry, source=chosen.name)
        override = _overridden_arch(arch, conversion.recorded_arch, entry)
        if override:  # loaded, but the names and shapes fitting does not make it the same function
            log.warning("checkpoint %s: %s", path, override)
            notes.append(override)
    except InferKitError as exc:  # a --from that contradicts the file: say what auto would have read it as
        better = auto_would_choose(file, chosen.name) if source != AUTO else None
        if better is None:
            raise
        raise InferKitError(exc.message, hint=f"{exc.hint}; {better}" if exc.hint else better) from None
    model.eval()
    info = CheckpointInfo(
        path=path,
        sha256=sha256_file(path),
        layout=conversion.layout,
        arch=entry.name,
        num_classes=classes,
        spec=conversion.spec,
        classes=conversion.classes,
        stripped_prefix=conversion.stripped_prefix,
        source=chosen.name,
        source_reason=detection.reason,
        chosen_by=AUTO if source == AUTO else "--from",
        variant=conversion.variant,
        notes=tuple(notes),
        extra=dict(conversion.extra),
    )
    return model, info


def _load_strict(model: torch.nn.Module, conversion: Conversion, *, path: Path, entry: ModelEntry,
                 source: str) -> None:
    tensors, origin = conversion.tensors, conversion.origin
    expected = model.state_dict()

    def named(target: str) -> str:  # "source -> target" where the names differ
        came = origin.get(target, target)
        return target if came == target else f"{came} -> {target}"

    def wanted(target: str) -> str:
        came = conversion.expected_source(target)
        return target if not came or came == target else f"{target} <- {came}"

    missing = [wanted(k) for k in expected if k not in tensors and not k.endswith("num_batches_tracked")]
    unexpected = [named(k) for k in tensors if k not in expected]
    mismatched = [
        f"{named(k)} {list(tensors[k].shape)} vs {list(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tuple(tensors[k].shape) != tuple(v.shape)
    ]
    parts = []
    if conversion.unmatched:
        parts.append(_listed(conversion.unmatched, f"tensor(s) no {source} name rule covers"))
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", mismatched)):
        if items:
            parts.append(_listed(items, f"{label} key(s)"))
    if parts:
        recorded = f"; the checkpoint says arch {conversion.recorded_arch!r}" if conversion.recorded_arch else ""
        variant = f" [{conversion.variant}]" if conversion.variant else ""
        reader = "" if source == "pytorch" else f" (read as {source})"
        raise InferKitError(
            f"checkpoint {path}{reader} does not fit {entry.name}{variant} (timm {entry.arch}): "
            f"{'; '.join(parts)}{recorded}",
            hint="is it a checkpoint for another architecture or class count? pass the right --arch/--num-classes"
            + ("" if source == "pytorch" else ", or another --from"),
        )
    for key, value in expected.items():  # old torchvision files and InPlace-ABN predate BatchNorm's counter
        if key.endswith("num_batches_tracked") and key not in tensors:
            tensors[key] = value
    model.load_state_dict(tensors, strict=True)


def _overridden_arch(arch: str | None, recorded: str | None, entry: ModelEntry) -> str | None:
    """A note when ``--arch`` names another model than the checkpoint records (None: it does not)."""
    if arch is None or recorded is None or recorded == arch:
        return None
    try:
        recorded_timm = get_model(recorded).arch
    except InferKitError:  # a name timm does not know (a recipe's own): nothing to compare
        return None
    if recorded_timm.split(".")[0] == entry.arch.split(".")[0]:
        return None
    return (f"--arch {arch} overrides the checkpoint's arch {recorded!r} (timm {recorded_timm}); the weights fit, "
            "but check that the two compute the same function")


def _listed(items: list[str], label: str) -> str:
    shown = ", ".join(items[:_SHOW]) + (", ..." if len(items) > _SHOW else "")
    return f"{len(items)} {label} ({shown})"


def _head_size(model: torch.nn.Module, head: str | None) -> int | None:
    if head is None:
        return getattr(model, "num_classes", None)
    return int(model.state_dict()[head].shape[0])
