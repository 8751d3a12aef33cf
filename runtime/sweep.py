"""``--dymShape_range``: one run per shape of a range, then ais_bench's sweep summary.

ais_bench expands the range (``N``, ``N~M``, ``N~M~STEP``, ``A-B-C`` per dim; the Cartesian
product over dims, then over inputs; at most 256 shapes; or a ``.info`` file of such lines),
re-launches itself once per shape with ``--dymShape=<shape>`` (a failed shape is recorded and
the sweep goes on), and prints::

    [INFO] -----------------dyshape_range Performance Summary------------------
    [INFO] run_count:{n} success_count:{k} avg_throughput:{mean}
    [INFO] {rank} dymshape:{shape}  result:{OK|Failed} throughput:{t}     (fastest first)
    [INFO] ------------------------------------------------------

Every shape writes into the same ``--output``/``--output_dirname`` with the usual names, so a
later shape's files replace an earlier one's, as they do under ais_bench (so a folder that already holds
another run's files is refused before the first shape).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from infer_kit.console import log
from infer_kit.errors import InferKitError
from infer_kit.runtime.dynamic import expand_shape_range
from infer_kit.runtime.output_writer import existing_outputs
from infer_kit.runtime.result_folder import result_paths
from infer_kit.runtime.stage import RunResult, run


@dataclass(frozen=True)
class ShapeRun:
    shape: str
    ok: bool
    throughput: float
    result: RunResult | None
    error: str | None = None


@dataclass(frozen=True)
class SweepResult:
    runs: tuple[ShapeRun, ...]

    @property
    def lines(self) -> list[str]:
        good = [r.throughput for r in self.runs if r.ok]
        mean = sum(good) / len(good) if good else math.nan
        lines = ["[INFO] -----------------dyshape_range Performance Summary------------------",
                 f"[INFO] run_count:{len(self.runs)} success_count:{len(good)} avg_throughput:{mean}"]
        ranked = sorted(self.runs, key=lambda r: r.throughput, reverse=True)
        for rank, item in enumerate(ranked):
            lines.append(f"[INFO] {rank} dymshape:{item.shape}  result:{'OK' if item.ok else 'Failed'} "
                         f"throughput:{item.throughput}")
        lines.append("[INFO] ------------------------------------------------------")
        return lines


def run_shape_range(model: Any, inputs: Any = None, output: Any = None, *, dym_shape_range: str,
                    **options: Any) -> SweepResult:
    """Run ``model`` once per shape of ``dym_shape_range`` (``options`` as for :func:`run`)."""
    shapes = expand_shape_range(dym_shape_range)
    options.pop("dym_shape", None)
    if output is not None and options.get("output_dirname"):  # later shapes write over the folder: it must be ours
        result_dir, _ = result_paths(output, options["output_dirname"])
        existing = existing_outputs(result_dir) if result_dir is not None else set()
        if existing:
            raise InferKitError(f"result folder {result_dir} already holds {len(existing)} file(s), and a "
                                "--dymShape_range sweep writes each shape's outputs over the last one's",
                                hint="choose another --output-dirname")
    runs = []
    for index, shape in enumerate(shapes):
        try:
            result = run(model, inputs, output, dym_shape=shape, replace_outputs=index > 0, **options)
        except InferKitError as exc:
            log.warning(f"dymshape:{shape} end run result:Failed ({exc.message})")
            runs.append(ShapeRun(shape, False, 0, None, exc.message))
            continue
        log.info(f"dymshape:{shape} end run result:OK")
        runs.append(ShapeRun(shape, True, float(result.summary["throughput"]), result))
    return SweepResult(tuple(runs))
