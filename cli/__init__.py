"""The ``infer-kit`` command line: a click group whose subcommands load on demand.

Each subcommand lives in ``cli/<name>.py`` as ``command`` and only parses
arguments, calls one library function and prints. The group knows the commands' one-line
help without importing them, so ``infer-kit --help`` imports neither torch nor onnx.
User errors (:class:`InferKitError`) print one line and exit non-zero; anything else is
reported as an internal error, with the traceback under ``-v``.
"""

from __future__ import annotations

import importlib
import importlib.util
import signal
import sys
import traceback
from typing import Any

import click

from infer_kit import __version__, console
from infer_kit.errors import InferKitError

# name -> (module, one-line help); listed in the order a user meets them.
COMMANDS: dict[str, tuple[str, str]] = {
    "pipeline": ("infer_kit.cli.pipeline", "Run export -> atc -> preprocess -> run -> evaluate in one go."),
    "train": ("infer_kit.cli.train", "Train a registry model on an ImageFolder tree (AMP, torchrun DDP)."),
    "dataset": ("infer_kit.cli.dataset", "Write a real labelled dataset as an ImageNet-layout tree."),
    "export": ("infer_kit.cli.export", "Export a checkpoint to a verified, spec-stamped ONNX model."),
    "quantize": ("infer_kit.cli.quantize", "Quantize an ONNX model to INT8 (QDQ), calibrated on preprocessed images."),
    "atc": ("infer_kit.cli.atc", "Compile ONNX to batch-sized OM models (real ATC or CPU emulation)."),
    "aipp": ("infer_kit.cli.aipp", "Generate, check and emulate AIPP configs."),
    "preprocess": ("infer_kit.cli.preprocess", "Turn an image folder into input tensor files."),
    "run": ("infer_kit.cli.run", "Batched inference over tensor files, ais_bench-compatible."),
    "evaluate": ("infer_kit.cli.evaluate", "Score run outputs into a ModelZoo result.json (top-1..top-5)."),
    "compare": ("infer_kit.cli.compare", "Per-image agreement between two runs, or per layer of two models."),
    "models": ("infer_kit.cli.models", "List the model registry and each model's preprocessing."),
    "doctor": ("infer_kit.cli.doctor", "Report which tools and backends are available here."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (module, _) in COMMANDS.items() if importlib.util.find_spec(module) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or importlib.util.find_spec(entry[0]) is None:
            return None
        return importlib.import_module(entry[0]).command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="infer-kit")
@click.option("-v", "--verbose", count=True, help="More detail (repeatable); tracebacks for internal errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings, errors and final results.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """infer-kit: image classifiers from a PyTorch checkpoint to a scored offline-inference run.

    pth -> onnx -> om (Ascend ATC + AIPP, or an exact CPU emulation) -> tensor files ->
    batched run (ais_bench or ONNX Runtime) -> top-1/top-5 in result.json.
    """
    ctx.ensure_object(dict)
    ctx.obj["verbosity"] = -1 if quiet else verbose
    console.configure(ctx.obj["verbosity"])


def usage_line(exc: click.ClickException, args: list[str] | None = None) -> str:
    """click's error as one line: which command, what was wrong, where to look (no usage block).

    Some of click's parser errors (an option missing its value) carry no context: the command is
    then the first of ``args`` that names one.
    """
    message = " ".join(exc.format_message().split()).rstrip(".")
    context = getattr(exc, "ctx", None)
    if context is not None:
        command = context.command_path
    else:
        named = next((a for a in args or [] if a in COMMANDS), None)
        command = f"infer-kit {named}" if named else "infer-kit"
    return f"{command}: {message}: see '{command} --help'"


class _Terminated(Exception):
    """SIGTERM arrived: stop like Ctrl-C does (workers cancelled, complete files kept)."""


def _terminate(signum: int, frame: Any) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: one line per user error, never a traceback for one."""
    args = sys.argv[1:] if argv is None else argv
    if argv is None:  # the real command, not a call from Python
        signal.signal(signal.SIGTERM, _terminate)
    verbose = any(a in ("-v", "--verbose") or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in args)
    try:
        return cli.main(args=args, prog_name="infer-kit", standalone_mode=False)
    except InferKitError as exc:
        click.echo(f"infer-kit: error: {exc.one_line()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # a usage mistake: the same one line as every other user error
        click.echo(f"infer-kit: error: {usage_line(exc, args)}", err=True)
        sys.exit(InferKitError.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        click.echo("infer-kit: interrupted; completed files are kept, rerun with --resume to finish", err=True)
        sys.exit(130)
    except _Terminated:
        click.echo("infer-kit: terminated; completed files are kept, rerun with --resume to finish", err=True)
        sys.exit(143)
    except BrokenPipeError:
        sys.exit(141)
    except Exception as exc:  # a bug: say so plainly
        if verbose:
            traceback.print_exc()
        click.echo(
            f"infer-kit: internal error: {type(exc).__name__}: {exc} "
            "(this is a bug; rerun with -v for the traceback and report it)",
            err=True,
        )
        sys.exit(70)
