"""Every flag of ais_bench's ``run``, in all its spellings, as ``infer-kit run`` options.

``python3 -m ais_bench`` (argparse) spells its flags with underscores and camel case
(``--dymBatch``, ``--output_dirname``) and takes any unambiguous prefix (``--output_dir``);
``msit benchmark`` / ``ait benchmark`` spell the same flags with dashes and short aliases
(``--dym-batch``, ``-db``, ``-om``). ``infer-kit run`` accepts all of them: each row of
:data:`FLAGS` is one click option with every spelling (``--help`` shows infer-kit's dashed one),
and :class:`AisBenchCommand` expands argparse-style prefixes of the long ones. ais_bench's
switches take a value (``--debug 1``, ``--profiler true``); alone they mean on.
The README's flag table is this table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from infer_kit.result_files import OUTFMTS

TRUE_WORDS = ("yes", "true", "t", "y", "1")
FALSE_WORDS = ("no", "false", "f", "n", "0")


class AisBool(click.ParamType):
    """ais_bench's ``str2bool``: yes/true/t/y/1 and no/false/f/n/0, any case."""

    name = "bool"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
        self.fail("Boolean value expected true, 1, false, 0 with case insensitive.", param, ctx)


BOOL = AisBool()


@dataclass(frozen=True)
class Flag:
    """One ais_bench flag: where it lands, every spelling, its type and default, what infer-kit does with it."""

    dest: str
    shown: tuple[str, ...]  # infer-kit's spellings, shown in --help
    ais_bench: tuple[str, ...]  # python3 -m ais_bench
    msit: tuple[str, ...]  # msit / ait benchmark
    kind: Any
    default: Any
    help: str
    switch: bool = False  # ais_bench's str2bool switch: takes a value, alone means on
    required: bool = False

    @property
    def spellings(self) -> tuple[str, ...]:
        seen: list[str] = []
        for name in (*self.shown, *self.ais_bench, *self.msit):
            if name not in seen:
                seen.append(name)
        return tuple(seen)


def _flag(dest: str, shown: Sequence[str], ais: Sequence[str], msit: Sequence[str], kind: Any, default: Any,
          help: str, **extra: Any) -> Flag:
    return Flag(dest, tuple(shown), tuple(ais), tuple(msit), kind, default, help, **extra)


BACKEND_CHOICES = ("auto", "onnxruntime", "ascend", "torch", "trtexec")

FLAGS: tuple[Flag, ...] = (
    _flag("model", ["-m", "--model"], ["--model", "-m"], ["-om", "--om-model"], str, None,
          "Model: .onnx, emulated artifact (<base>.emu.onnx or .manifest.json), .om, or a checkpoint with "
          "--backend torch --arch.", required=True),
    _flag("inputs", ["-i", "--input"], ["--input", "-i"], ["-i", "--input"], str, None,
          "Folder of .bin/.npy files (one folder per model input, comma-separated) or a comma list of files. "
          "Without it: pure-performance mode on generated data."),
    _flag("output", ["-o", "--output"], ["--output", "-o"], ["-o", "--output"], click.Path(file_okay=False), None,
          "Where results go: OUT/NAME/ plus OUT/NAME_summary.json beside it. Without it nothing is saved."),
    _flag("output_dirname", ["--output-dirname"], ["--output_dirname"], ["-od", "--output-dirname"], str, None,
          "NAME of the result folder (default: a %Y_%m_%d-%H_%M_%S timestamp)."),
    _flag("outfmt", ["--outfmt"], ["--outfmt"], ["--outfmt"], click.Choice(OUTFMTS, case_sensitive=False), "BIN",
          "Output file format, written exactly as ais_bench writes it."),
    _flag("loop", ["-l", "--loop"], ["--loop", "-l"], ["--loop"], click.IntRange(1, 100000), 1,
          "Executions per inference, each one timing entry; the last one's outputs are written."),
    _flag("debug", ["--debug"], ["--debug"], ["--debug"], BOOL, False,
          "Print the model description ais_bench prints (tensors, dims, ACL formats, gears).", switch=True),
    _flag("device", ["-d", "--device"], ["--device", "-d"], ["-d", "--device"], str, "0",
          "Device id, or a list: one process per device, each on every input, into OUT/NAME/device{id}_{i}/ "
          "(ais_bench's layout; see --split-devices, --divide-input)."),
    _flag("dym_batch", ["--dym-batch"], ["--dymBatch"], ["-db", "--dym-batch"], click.IntRange(1, 4096), None,
          "Dynamic batch gear of a model compiled with --dynamic-batch."),
    _flag("dym_hw", ["--dym-hw"], ["--dymHW"], ["-dhw", "--dym-hw"], str, None,
          "Dynamic image size gear \"H,W\" (height first) of a model compiled with --dynamic-image-size."),
    _flag("dym_dims", ["--dym-dims"], ["--dymDims"], ["-dd", "--dym-dims"], str, None,
          "Dynamic dims gear \"name:d,d;name:d\" of a model compiled with --dynamic-dims."),
    _flag("dym_shape", ["--dym-shape"], ["--dymShape"], ["-ds", "--dym-shape"], str, None,
          "Every input's shape \"name:d,d;...\" for a shape-range model."),
    _flag("output_size", ["--output-size"], ["--outputSize"], ["-outsize", "--output-size"], str, None,
          "Output buffer bytes per output, comma-separated (shape-range models)."),
    _flag("auto_set_dymshape_mode", ["--auto-set-dymshape-mode"], ["--auto_set_dymshape_mode"],
          ["-asdsm", "--auto-set-dymshape-mode"], BOOL, False,
          "One .npy per inference at its own shape (shape-range models).", switch=True),
    _flag("auto_set_dymdims_mode", ["--auto-set-dymdims-mode"], ["--auto_set_dymdims_mode"],
          ["-asddm", "--auto-set-dymdims-mode"], BOOL, False,
          "One .npy per inference, its shape a compiled dims gear.", switch=True),
    _flag("batchsize", ["--batchsize"], ["--batchsize"], ["--batch-size"], click.IntRange(1, 4096), None,
          "The batch of the throughput figure (default: from the model); also the batch of a plain ONNX model "
          "with a dynamic batch axis."),
    _flag("pure_data_type", ["--pure-data-type"], ["--pure_data_type"], ["-pdt", "--pure-data-type"],
          click.Choice(("zero", "random")), "zero", "Generated data for pure-performance mode (no --input)."),
    _flag("profiler", ["--profiler"], ["--profiler"], ["-pf", "--profiler"], BOOL, False,
          "Per-operator profile: ONNX Runtime's profiler here (OUT/profiler/), msprof on the device.", switch=True),
    _flag("dump", ["--dump"], ["--dump"], ["--dump"], BOOL, False,
          "Every operator's inputs and outputs of every inference under OUT/dump/ (npy here).", switch=True),
    _flag("acl_json_path", ["--acl-json-path"], ["--acl_json_path"], ["-acl", "--acl-json-path"], str, None,
          "An acl.json for the Ascend runtime (device only: exit 2 here)."),
    _flag("output_batchsize_axis", ["--output-batchsize-axis"], ["--output_batchsize_axis"],
          ["-oba", "--output-batchsize-axis"], click.IntRange(0, 8), 0,
          "Axis along which each output is cut into per-file pieces."),
    _flag("run_mode", ["--run-mode"], ["--run_mode"], ["-rm", "--run-mode"],
          click.Choice(("array", "files", "tensor", "full")), "array",
          "ais_bench's data loading: same outputs; files refuses .npy, full reads every batch first."),
    _flag("display_all_summary", ["--display-all-summary"], ["--display_all_summary"],
          ["-das", "--display-all-summary"], BOOL, False, "Also print the H2D and D2H lines.", switch=True),
    _flag("warmup_count", ["--warmup-count"], ["--warmup_count"], ["-wcount", "--warmup-count"],
          click.IntRange(0, 10000), 1, "Untimed inferences on the first batch before timing starts."),
    _flag("dym_shape_range", ["--dym-shape-range"], ["--dymShape_range"], ["-dr", "--dym-shape-range"], str, None,
          "Run once per shape of a range \"name:1~4,3,224,224\" (or a .info file) and rank them."),
    _flag("aipp_config", ["--aipp-config"], ["--aipp_config"], ["-aipp", "--aipp-config"], str, None,
          "Dynamic AIPP parameters (ais_bench's .config INI) for a model compiled with aipp_mode: dynamic."),
    _flag("energy_consumption", ["--energy-consumption"], ["--energy_consumption"],
          ["-ec", "--energy-consumption"], BOOL, False, "NPU energy via npu-smi (device only: exit 2 here).",
          switch=True),
    _flag("npu_id", ["--npu-id"], ["--npu_id"], ["--npu-id"], str, "0",
          "NPU id for --energy-consumption."),
    _flag("backend", ["--backend"], ["--backend"], ["--backend"], click.Choice(BACKEND_CHOICES), "auto",
          "auto: .om -> ascend, ONNX or emulated artifact -> onnxruntime; trtexec: ais_bench's --perf backend."),
    _flag("perf", ["--perf"], ["--perf"], ["--perf"], BOOL, False,
          "Run NVIDIA's trtexec on the model (with --backend trtexec), as ais_bench does.", switch=True),
    _flag("pipeline", ["--pipeline"], ["--pipeline"], ["--pipeline"], BOOL, False,
          "ais_bench's C++ pipeline: one file per inference on --threads lanes, its output names.", switch=True),
    _flag("profiler_rename", ["--profiler-rename"], ["--profiler_rename"], ["--profiler-rename"], BOOL, True,
          "Rename msprof's csv/json outputs (device only; the CPU profile is named after the model).", switch=True),
    _flag("dump_npy", ["--dump-npy"], ["--dump_npy"], ["--dump-npy"], BOOL, False,
          "With --dump: the npy files go to OUT/dump/<timestamp>_npy/ (msaccucmp's place).", switch=True),
    _flag("divide_input", ["--divide-input"], ["--divide_input"], ["--divide-input"], BOOL, False,
          "With a --device list: each device takes a contiguous share of the files.", switch=True),
    _flag("threads", ["--threads"], ["--threads"], ["--threads"], click.IntRange(1, 64), 1,
          "Pipeline lanes with --pipeline (ais_bench); CPU threads are --cpu-threads."),
)

FLAG_BY_DEST = {flag.dest: flag for flag in FLAGS}


class SpelledOption(click.Option):
    """An option that takes every spelling but shows only infer-kit's in ``--help``."""

    def __init__(self, *args: Any, shown: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shown_opts = list(shown)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        opts, self.opts = self.opts, [o for o in self.opts if o in self.shown_opts] or self.opts[:1]
        secondary, self.secondary_opts = self.secondary_opts, []
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts, self.secondary_opts = opts, secondary


def ais_bench_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add every row of :data:`FLAGS` to a click command."""
    for flag in reversed(FLAGS):
        extra: dict[str, Any] = {"required": flag.required}
        if flag.switch:
            extra.update(is_flag=False, flag_value="1", default="1" if flag.default else "0")
        else:
            extra["default"] = flag.default
            extra["show_default"] = flag.default not in (None, 0, "0") or flag.dest in ("loop", "warmup_count")
        func = click.option(*flag.spellings, flag.dest, cls=SpelledOption, shown=flag.shown, type=flag.kind,
                            help=flag.help, **extra)(func)
    return func


def long_spellings() -> dict[str, str]:
    """Every long spelling of ais_bench and msit -> its dest (for argparse-style prefixes)."""
    return {name: flag.dest for flag in FLAGS for name in (*flag.ais_bench, *flag.msit) if name.startswith("--")}


class AisBenchCommand(click.Command):
    """A command that expands argparse-style unambiguous prefixes of ais_bench's long flags."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_prefixes(args, self._known(ctx)))

    def _known(self, ctx: click.Context) -> set[str]:
        return {opt for param in self.get_params(ctx) for opt in getattr(param, "opts", []) +
                getattr(param, "secondary_opts", [])}


def expand_prefixes(args: list[str], known: set[str]) -> list[str]:
    """``--output_dir x`` -> ``--output_dirname x`` as argparse does: a unique prefix of one flag's spellings."""
    spellings = long_spellings()
    out = []
    for position, arg in enumerate(args):
        if arg == "--":
            return out + args[position:]
        name, sep, value = arg.partition("=")
        if not name.startswith("--") or name in known or len(name) < 3:
            out.append(arg)
            continue
        candidates = sorted({full for full in spellings if full.startswith(name)})
        dests = {spellings[full] for full in candidates}
        if len(dests) == 1:
            out.append(candidates[0] + sep + value)
        elif len(dests) > 1:
            raise click.UsageError(f"ambiguous option: {name} could match {', '.join(candidates)}")
        else:
            out.append(arg)
    return out
