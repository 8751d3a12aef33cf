"""The pipeline's configuration: a TOML file (parsed, never evaluated) or the same from flags.

Paths are relative to the config file. Unknown keys and wrong types are errors that name
the file, the section and the key, so a typo never silently falls back to a default.

```toml
work_dir = "pipeline-work"            # everything the pipeline writes goes here
name = "resnet18-fmnist"              # shown in the report

[train]                               # optional: train first, then deploy the best checkpoint
arch = "resnet18"
data = "data/fmnist"                  # DIR/train/<class>/..., DIR/val/<class>/...
options = { epochs = 3, batch_size = 128, lr = 0.2 }   # any `infer-kit train` option

[model]                               # what to deploy (omit checkpoint/onnx when [train] is given)
checkpoint = "model_best.pth"         # or: onnx = "model.onnx"; "package:NAME/PATH" is a file an installed
                                      # package ships (found with importlib.resources)
source = "auto"                       # which codebase wrote the checkpoint (export --from)
arch = "resnet18"                     # optional when the checkpoint records it
spec = { resize = 32, crop = 32 }     # PreprocessSpec overrides

[data]
images = "data/fmnist/val_flat"       # a flat folder or a class-folder tree
labels = "data/fmnist/val_label.txt"  # optional for a class-folder tree
limit = 2000                          # optional: the first N images

[atc]
soc = "Ascend910A"
batch_sizes = [1, 16]                 # one row per (batch size, precision mode)
precision_modes = ["force_fp16"]      # any ATC mode, "all" (every distinct one), "int8" (emulated INT8)
aipp = "auto"                         # auto | none | path/to/config
emulate = "auto"                      # auto (real ATC when on PATH) | true | false
calibration = "prep_calib"            # optional: images for the range check and INT8 calibration
                                      # (default: the pipeline's own float tensors, else its aipp ones)
samples = 128                         # optional: how many of them (default: 8 for the range check, 128 for INT8)

[run]
outfmt = "BIN"
threads = 2

[evaluate]
min_top1 = 80.0                       # optional gates (exit code 3)

[compare]
reference = true                      # also run the fp32 ONNX model and compare every row with it
torch = false                         # also run the checkpoint in eager torch and compare every row with it

[cluster]                             # optional: spread the rows over a Ray cluster (pip install 'infer-kit[ray]')
engine = "ray"                        # "local" (the default) | "ray"; work_dir and the inputs on a shared folder
address = "auto"                      # or "HEAD:6379"
resources = { CPU = 1 }               # what each atc/evaluate/compare task asks of Ray
run_resources = { NPU = 1 }           # what each run task asks (default: resources); its threads = its CPUs
```
"""

from __future__ import annotations

import os
import sys
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from infer_kit.errors import InferKitError
from infer_kit.fsutil import read_text
from infer_kit.gates import Gates, check_percentage
from infer_kit.result_files import OUTFMTS
from infer_kit.spec import PreprocessSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class TrainSection:
    arch: str
    data: Path
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSection:
    arch: str | None = None
    checkpoint: Path | None = None
    onnx: Path | None = None
    num_classes: int | None = None
    opset: int = 11
    spec: dict[str, Any] = field(default_factory=dict)
    trust_checkpoint: bool = False
    source: str = "auto"


@dataclass(frozen=True)
class DataSection:
    images: Path
    labels: Path | None = None
    limit: int | None = None
    workers: int | None = None


@dataclass(frozen=True)
class AtcSection:
    soc: str = "Ascend910A"
    batch_sizes: tuple[int, ...] = (1,)
    precision_modes: tuple[str, ...] = ("force_fp16",)
    aipp: str = "auto"
    emulate: str | bool = "auto"
    calibration: Path | None = None
    samples: int | None = None


@dataclass(frozen=True)
class RunSection:
    outfmt: str = "BIN"
    threads: int | None = None
    warmup_count: int = 1


@dataclass(frozen=True)
class EvaluateSection:
    topk: int = 5
    min_top1: float | None = None
    min_top5: float | None = None


@dataclass(frozen=True)
class CompareSection:
    reference: bool = True
    torch: bool = False
    max_disagreement: float | None = None


@dataclass(frozen=True)
class ClusterSection:
    engine: str = "local"
    address: str = "auto"
    resources: dict[str, Any] = field(default_factory=dict)
    run_resources: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineConfig:
    work_dir: Path
    model: ModelSection
    data: DataSection
    name: str = "pipeline"
    train: TrainSection | None = None
    atc: AtcSection = AtcSection()
    run: RunSection = RunSection()
    evaluate: EvaluateSection = EvaluateSection()
    compare: CompareSection = CompareSection()
    cluster: ClusterSection = ClusterSection()
    source: Path | None = None

    @property
    def gates(self) -> Gates:
        """The accuracy and agreement thresholds of [evaluate] and [compare]."""
        return Gates(min_top1=self.evaluate.min_top1, min_top5=self.evaluate.min_top5,
                     max_disagreement=self.compare.max_disagreement)

    def emulate_flag(self) -> bool | None:
        """``compile_om``'s ``emulate``: None lets it choose (real ATC when on PATH)."""
        return None if self.atc.emulate == "auto" else bool(self.atc.emulate)


_SECTIONS = {
    "train": TrainSection, "model": ModelSection, "data": DataSection, "atc": AtcSection, "run": RunSection,
    "evaluate": EvaluateSection, "compare": CompareSection, "cluster": ClusterSection,
}
_PATH_FIELDS = {"data", "checkpoint", "onnx", "images", "labels", "calibration"}
_ZERO_OK = {"warmup_count"}  # integer keys for which 0 means something (as run --warmup-count 0)


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw tables of a pipeline TOML file."""
    path = Path(path)
    text = read_text(path, what="pipeline config")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InferKitError(f"{path}: not valid TOML ({exc})") from None


def load_config(path: str | os.PathLike[str]) -> PipelineConfig:
    """Parse a pipeline TOML file."""
    path = Path(path)
    return config_from_dict(read_toml(path), base=path.parent, where=str(path), source=path)


def config_from_dict(raw: dict[str, Any], *, base: Path, where: str, source: Path | None = None) -> PipelineConfig:
    """Build a config from parsed TOML (or from CLI flags shaped the same way)."""
    known = {"work_dir", "name", *_SECTIONS}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InferKitError(f"{where}: unknown key(s) {', '.join(unknown)}", hint=f"known: {', '.join(sorted(known))}")
    sections = {name: _section(cls, raw.get(name), base, where, name) for name, cls in _SECTIONS.items()}
    if sections["data"] is None:
        raise InferKitError(f"{where}: missing [data] section with images = \"...\"")
    model = sections["model"] or ModelSection()
    if sections["train"] is None and model.checkpoint is None and model.onnx is None:
        raise InferKitError(f"{where}: [model] needs checkpoint = ... or onnx = ... (or add a [train] section)")
    if model.checkpoint is not None and model.onnx is not None:
        raise InferKitError(f"{where}: [model] takes checkpoint or onnx, not both")
    if sections["train"] is not None and (model.checkpoint is not None or model.onnx is not None):
        given = "checkpoint" if model.checkpoint is not None else "onnx"
        raise InferKitError(f"{where}: [model] {given} and a [train] section exclude each other (the pipeline "
                            "deploys the checkpoint it trains)", hint=f"drop [model] {given}, or the [train] section")
    spec_fields = {f.name for f in fields(PreprocessSpec)}
    unknown_spec = sorted(set(model.spec) - spec_fields)
    if unknown_spec:
        raise InferKitError(
            f"{where}: [model] spec has unknown key(s) {', '.join(unknown_spec)}",
            hint=f"known: {', '.join(sorted(spec_fields))}",
        )
    _check_spec(model.spec, where)
    atc = _check_atc(sections["atc"] or AtcSection(), base, where)
    if sections["train"] is not None:
        _check_train_options(sections["train"], where)
    _check_source(model, where)
    run = sections["run"] or RunSection()
    if run.outfmt.upper() not in OUTFMTS:
        raise InferKitError(f"{where}: [run] outfmt {run.outfmt!r} is not one of {', '.join(OUTFMTS)}")
    work_dir = raw.get("work_dir", "pipeline-work")
    if not isinstance(work_dir, str):
        raise InferKitError(f"{where}: work_dir must be a string")
    name = raw.get("name", "pipeline")
    if not isinstance(name, str):
        raise InferKitError(f"{where}: name must be a string")
    evaluate = sections["evaluate"] or EvaluateSection()
    compare = sections["compare"] or CompareSection()
    for key, value in (("[evaluate] min_top1", evaluate.min_top1), ("[evaluate] min_top5", evaluate.min_top5),
                       ("[compare] max_disagreement", compare.max_disagreement)):
        check_percentage(f"{where}: {key}", value)
    if evaluate.min_top5 is not None and evaluate.topk < 5:
        raise InferKitError(f"{where}: [evaluate] min_top5 needs topk 5 or more, not {evaluate.topk}")
    if compare.torch and model.onnx is not None:
        raise InferKitError(f"{where}: [compare] torch = true needs a checkpoint to run in torch, not [model] onnx",
                            hint="give [model] checkpoint = ... (or a [train] section), or drop [compare] torch")
    cluster = sections["cluster"] or ClusterSection()
    _check_cluster(cluster, where)
    settings = sorted(set(raw.get("cluster") or {}) - {"engine"})
    if settings and "engine" not in raw["cluster"]:  # as run refuses --address without --engine ray
        raise InferKitError(f"{where}: [cluster] {', '.join(settings)} without engine: the rows would run here, "
                            "on this machine", hint="add engine = \"ray\" to [cluster] (or engine = \"local\" to "
                            "run here anyway), or drop the [cluster] section")
    return PipelineConfig(
        work_dir=(base / work_dir).resolve(),
        name=name,
        train=sections["train"],
        model=model,
        data=sections["data"],
        atc=atc,
        run=run,
        evaluate=evaluate,
        compare=compare,
        cluster=cluster,
        source=source,
    )


def _section(cls: type, raw: Any, base: Path, where: str, name: str) -> Any:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InferKitError(f"{where}: [{name}] must be a table")
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise InferKitError(
            f"{where}: [{name}] unknown key(s) {', '.join(unknown)}", hint=f"known: {', '.join(sorted(names))}"
        )
    missing = [f.name for f in fields(cls) if f.name not in raw and f.default is MISSING
               and f.default_factory is MISSING]
    if missing:
        raise InferKitError(f"{where}: [{name}] is missing key(s) {', '.join(missing)}",
                            hint=f"add {' and '.join(f'{key} = ...' for key in missing)} to [{name}]")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        expected = names[key].type
        values[key] = _coerce(value, str(expected), f"{where}: [{name}] {key}", minimum=0 if key in _ZERO_OK else 1)
        if key in _PATH_FIELDS and values[key] is not None:
            values[key] = _path(values[key], base, f"{where}: [{name}] {key}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise InferKitError(f"{where}: [{name}] {exc}") from None


def _coerce(value: Any, expected: str, where: str, minimum: int = 1) -> Any:
    """Check a TOML value against a field's annotation (as written in this module)."""
    def fail(kind: str) -> InferKitError:
        return InferKitError(f"{where} must be {kind}, got {value!r}")

    if expected.startswith("tuple[int"):
        if not isinstance(value, list) or not value or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise fail("a non-empty list of positive integers")
        return tuple(value)
    if expected.startswith("tuple[str"):
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise fail("a non-empty list of strings")
        return tuple(value)
    if expected.startswith("dict"):
        if not isinstance(value, dict):
            raise fail("a table")
        return dict(value)
    if expected.startswith("bool"):
        if not isinstance(value, bool):
            raise fail("true or false")
        return value
    if expected.startswith("str | bool"):
        if not isinstance(value, str | bool):
            raise fail("a string or a boolean")
        return value
    if expected.startswith(("Path", "str")):
        if not isinstance(value, str) or not value:
            raise fail("a non-empty string")
        return value
    if expected.startswith("int"):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise fail("a positive integer" if minimum == 1 else f"an integer of {minimum} or more")
        return value
    if expected.startswith("float"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise fail("a number")
        return float(value)
    return value


PACKAGE_PREFIX = "package:"


def _path(value: str, base: Path, where: str) -> Path:
    """A path relative to the config file, or ``package:NAME/PATH``: a file an installed package ships."""
    if not value.startswith(PACKAGE_PREFIX):
        return (base / value).resolve()
    import importlib.resources

    package, _, inner = value[len(PACKAGE_PREFIX):].partition("/")
    try:
        root = importlib.resources.files(package)
    except (ModuleNotFoundError, ValueError, TypeError):
        raise InferKitError(f"{where}: package {package!r} is not installed",
                            hint=f"pip install {package.replace('_', '-')}") from None
    path = Path(str(root.joinpath(*[part for part in inner.split("/") if part])))
    if not inner or not path.is_file():
        raise InferKitError(f"{where}: package {package!r} has no file {inner!r} (at {path})")
    return path


def _check_spec(overrides: dict[str, Any], where: str) -> None:
    """Each [model] spec value as PreprocessSpec checks it (and crop against resize when both are given), now
    rather than after the export."""
    checks = [{"resize": 1 << 20, "crop": 1, key: value} for key, value in overrides.items()]
    if "resize" in overrides and "crop" in overrides:
        checks.append({"resize": overrides["resize"], "crop": overrides["crop"]})
    for values in checks:
        try:
            PreprocessSpec(**values)
        except InferKitError as exc:
            raise InferKitError(f"{where}: [model] spec: {exc.message.removeprefix('preprocess spec: ')}",
                                hint=exc.hint) from None


def _check_source(model: ModelSection, where: str) -> None:
    from infer_kit.converter import SOURCE_NAMES

    if model.source not in SOURCE_NAMES:
        raise InferKitError(f"{where}: [model] source {model.source!r} is not one of {', '.join(SOURCE_NAMES)}")


def _check_atc(atc: AtcSection, base: Path, where: str) -> AtcSection:
    """``atc`` with "all" expanded into the modes it names and an AIPP config path made relative to the config
    file; unknown modes and bad values refused."""
    from infer_kit.converter import PRECISION_MODES, check_soc, resolve_precision_modes

    try:
        check_soc(atc.soc)
    except InferKitError as exc:
        raise InferKitError(f"{where}: [atc] soc {atc.soc!r} is not a chip ATC knows ({exc.message})",
                            hint=exc.hint) from None
    for mode in atc.precision_modes:
        if mode != "all" and mode not in PRECISION_MODES:
            raise InferKitError(
                f"{where}: [atc] precision mode {mode!r} is not one of all, {', '.join(PRECISION_MODES)}"
            )
    if isinstance(atc.emulate, str) and atc.emulate != "auto":
        raise InferKitError(f"{where}: [atc] emulate must be \"auto\", true or false")
    if len(set(atc.batch_sizes)) != len(atc.batch_sizes):
        raise InferKitError(f"{where}: [atc] batch_sizes has duplicates")
    try:
        modes = resolve_precision_modes(list(atc.precision_modes), atc.soc)
    except InferKitError as exc:
        raise InferKitError(f"{where}: [atc] {exc.message}", hint=exc.hint) from None
    aipp = atc.aipp if atc.aipp in ("auto", "none") else str(_path(atc.aipp, base, f"{where}: [atc] aipp"))
    return replace(atc, precision_modes=tuple(modes), aipp=aipp)


# [train] options the pipeline sets itself (the data, the arch, its work folder, the spec, resuming)
_TRAIN_OWN = {"data", "arch", "output", "spec_overrides", "resume"}


def _check_train_options(train: TrainSection, where: str) -> None:
    """[train] options: TrainConfig's own names, each of the kind its field takes (the values are checked by
    TrainConfig itself), so a typo stops here rather than after the stages before train."""
    from infer_kit.trainer import TrainConfig

    known = {f.name: str(f.type) for f in fields(TrainConfig)}
    for key, value in train.options.items():
        if key in _TRAIN_OWN:
            raise InferKitError(f"{where}: [train] options {key} is set by the pipeline itself",
                                hint="set [train] data/arch, [model] spec; the work folder is work_dir")
        if key not in known:
            raise InferKitError(f"{where}: [train] options has unknown key {key}",
                                hint=f"known: {', '.join(sorted(set(known) - _TRAIN_OWN))}")
        kind = known[key]
        ok = {"int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, int | float) and not isinstance(value, bool),
              "bool": isinstance(value, bool), "str": isinstance(value, str),
              "tuple[int, ...]": isinstance(value, list) and all(
                  isinstance(v, int) and not isinstance(v, bool) for v in value)}.get(kind.removesuffix(" | None"))
        if ok is False:
            raise InferKitError(f"{where}: [train] options {key} must be of type {kind}, got {value!r}")


def _check_cluster(cluster: ClusterSection, where: str) -> None:
    from infer_kit.cluster import ENGINES

    if cluster.engine not in ENGINES:
        raise InferKitError(f"{where}: [cluster] engine must be one of {', '.join(ENGINES)}, not {cluster.engine!r}")
    for key in ("resources", "run_resources"):
        for name, amount in getattr(cluster, key).items():
            if not isinstance(amount, int | float) or isinstance(amount, bool) or amount < 0:
                raise InferKitError(f"{where}: [cluster] {key} {name} must be a number of 0 or more, got {amount!r}",
                                    hint=f"e.g. {key} = {{ CPU = 1 }} or {{ NPU = 1 }}")
