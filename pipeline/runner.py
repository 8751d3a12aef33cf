"""`pipeline`: [train ->] export -> atc -> preprocess -> run -> evaluate [-> compare] -> report.

Every stage is one library call of its own stage package; this module only decides what
must run, and keys each stage's outputs by its inputs (see ``cache``): a rerun after a
change redoes exactly the stages downstream of it and says which it skipped. Spec changes
that do not touch the graph (everything but the crop size) restamp the exported ONNX
instead of exporting again. A failing stage is named, and the outputs of the stages before
it stay in the work folder (laid out by :class:`~infer_kit.pipeline.layout.WorkFolder`).

With ``[cluster] engine = "ray"`` the per-row stages (atc, run, evaluate, compare) run as Ray
tasks with their dependencies (:mod:`infer_kit.pipeline.ray_stages`), preprocess spreads its
images over the cluster, and the cache, the work folder's layout and the report stay here.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infer_kit.artifacts import describe_model
from infer_kit.cluster import import_ray
from infer_kit.console import log
from infer_kit.converter import compare_layers, export_onnx
from infer_kit.errors import InferKitError
from infer_kit.fsutil import atomic_write, check_output_dir, read_json, write_json_atomic
from infer_kit.gates import raise_for_failures
from infer_kit.locks import hold
from infer_kit.metadata import ModelInfo, load_onnx, read_model_info, stamp
from infer_kit.pipeline.cache import StageCache, file_fingerprint, folder_fingerprint, make_key
from infer_kit.pipeline.config import PipelineConfig
from infer_kit.pipeline.layout import WorkFolder
from infer_kit.pipeline.ray_stages import ClusterStages
from infer_kit.pipeline.report import ImageRow, write_report
from infer_kit.pipeline.report_data import build_report_data
from infer_kit.pipeline.rows import REFERENCE_ROW, TORCH_ROW, Row, StageOutcome
from infer_kit.pipeline.tasks import compare_row, compile_row, evaluate_row, run_row, run_torch_row
from infer_kit.postprocess import predictions
from infer_kit.preprocess import preprocess
from infer_kit.resolve import resolve_spec
from infer_kit.spec import PreprocessSpec
from infer_kit.trainer import TrainConfig, train


@dataclass
class PipelineResult:
    work_dir: Path
    rows: list[Row]
    outcomes: list[StageOutcome]
    report_md: Path
    report_html: Path
    summary_path: Path
    gate_failures: list[str] = field(default_factory=list)
    images: list[ImageRow] = field(default_factory=list)  # image by image, for a run of a few images

    @property
    def ran(self) -> list[str]:
        return [o.stage for o in self.outcomes if o.status != "cached"]

    @property
    def cached(self) -> list[str]:
        return [o.stage for o in self.outcomes if o.status == "cached"]

    def raise_for_gates(self) -> None:
        """:class:`~infer_kit.errors.GateFailed` (exit 3) naming every row that missed a gate."""
        raise_for_failures(self.gate_failures)


@dataclass
class Pending:
    """A stage's info: known (ran here, or cached), or that of a Ray task still running."""

    info: dict[str, Any] | None = None
    ref: Any = None
    cluster: ClusterStages | None = None

    def result(self) -> dict[str, Any]:
        if self.info is None:
            assert self.cluster is not None
            self.info = self.cluster.result(self.ref)
        return self.info


class _Pipeline:
    def __init__(self, config: PipelineConfig, force: bool) -> None:
        self.config = config
        self.work = WorkFolder(config.work_dir)
        self.work.root.mkdir(parents=True, exist_ok=True)
        self.cache = StageCache(self.work.root)
        self.force = force
        self.outcomes: list[StageOutcome] = []
        self.prep_info: dict[str, dict[str, Any]] = {}
        self.train_info: dict[str, Any] | None = None
        self.checkpoint: tuple[str, Path] | None = None  # (key, path) of the weights, for the torch row
        self.spec: PreprocessSpec | None = None
        section = config.cluster
        self.cluster = None
        if section.engine == "ray":
            self.cluster = ClusterStages(section.address, section.resources, section.run_resources, self.work.root,
                                         on_done=self._done, on_failed=self._failed)

    # ---- one stage, cached -------------------------------------------------------------
    def stage(self, name: str, payload: dict[str, Any], outputs: list[Path], body: Callable[[bool], dict[str, Any]],
              *, clear: list[Path] | None = None) -> tuple[str, dict[str, Any]]:
        """Run ``body(resume)`` here unless ``name``'s outputs exist for the same key; return (key, info)."""
        key, info, resume = self._plan(name, payload, outputs, clear)
        if info is not None:
            return key, info
        started = time.perf_counter()
        try:
            info = body(resume)
        except InferKitError as exc:
            raise self._failed(name, exc) from None
        self._done(name, key, time.perf_counter() - started, info)
        return key, info

    def task(self, name: str, payload: dict[str, Any], outputs: list[Path], func: Callable[..., dict[str, Any]],
             *args: Any, clear: list[Path] | None = None, is_run: bool = False, after: tuple[Pending, ...] = (),
             **kwargs: Any) -> tuple[str, Pending]:
        """A stage of :mod:`~infer_kit.pipeline.tasks`: ``func(resume, *args, **kwargs)`` here at once, or as a Ray
        task that waits for the stages ``after`` with ``[cluster] engine = "ray"``; (key, its pending info)."""
        if self.cluster is None:
            key, info = self.stage(name, payload, outputs, lambda resume: func(resume, *args, **kwargs), clear=clear)
            return key, Pending(info)
        key, info, resume = self._plan(name, payload, outputs, clear)
        if info is not None:
            return key, Pending(info)
        deps = [p.ref for p in after if p.info is None]
        ref = self.cluster.submit(name, key, func, args, kwargs, resume, is_run=is_run, after=deps)
        return key, Pending(ref=ref, cluster=self.cluster)

    def _plan(self, name: str, payload: dict[str, Any], outputs: list[Path],
              clear: list[Path] | None) -> tuple[str, dict[str, Any] | None, bool]:
        """(key, the cached info or None when the stage must run, whether it resumes); clears what it redoes."""
        key = make_key({"stage": name, **payload})
        entry = None if self.force else self.cache.hit(name, key, outputs)
        if entry is not None:
            log.info("[%s] cached", name)
            self.outcomes.append(StageOutcome(name, "cached", entry.get("seconds", 0.0)))
            return key, entry.get("info", {}), False
        resume = self.cache.interrupted(name, key) and not self.force
        if not resume:
            for path in clear or []:
                _remove(path)
        log.info("[%s] %s", name, "resuming" if resume else "running")
        self.cache.begin(name, key)
        return key, None, resume

    def _done(self, name: str, key: str, seconds: float, info: dict[str, Any]) -> None:
        self.cache.record(name, key, seconds, info)
        self.outcomes.append(StageOutcome(name, "ran", seconds))
        log.info("[%s] done in %.1f s", name, seconds)

    def _failed(self, name: str, exc: InferKitError) -> InferKitError:
        kept = f"outputs of earlier stages are kept in {self.work.root}; rerun to continue from this stage"
        failure = InferKitError(f"pipeline stage '{name}' failed: {exc.message}",
                                hint=f"{exc.hint}; {kept}" if exc.hint else kept)
        failure.exit_code = exc.exit_code
        return failure

    # ---- stages ------------------------------------------------------------------------
    def train(self) -> tuple[str, Path] | None:
        section = self.config.train
        if section is None:
            return None
        out = self.work.train_dir
        options = dict(section.options)
        payload = {"arch": section.arch, "data": folder_fingerprint(section.data), "options": options,
                   "spec": self.config.model.spec}

        def body(resume: bool) -> dict[str, Any]:
            kwargs = {**options, "spec_overrides": dict(self.config.model.spec)}
            if resume and self.work.train_checkpoint.is_file():
                kwargs["resume"] = self.work.train_checkpoint
            try:
                config = TrainConfig(data=section.data, arch=section.arch, output=out, **kwargs)
            except TypeError as exc:
                raise InferKitError(f"[train] options: {exc}") from None
            result = train(config)
            return {"best_acc1": result.best_acc1, "fps": result.fps, "table_row": result.table_row()}

        key, info = self.stage("train", payload, [self.work.best_checkpoint], body, clear=[out])
        self.train_info = info
        return key, self.work.best_checkpoint

    def export(self, trained: tuple[str, Path] | None) -> tuple[str, Path, PreprocessSpec, ModelInfo]:
        model = self.config.model
        overrides = dict(model.spec)
        exported = self.work.exported
        if model.onnx is not None:
            source_key = file_fingerprint(model.onnx)
            exported = model.onnx
        else:
            checkpoint = trained[1] if trained else model.checkpoint
            assert checkpoint is not None
            self.checkpoint = (trained[0] if trained else file_fingerprint(checkpoint), checkpoint)
            graph = {"checkpoint": self.checkpoint[0], "arch": model.arch,
                     "num_classes": model.num_classes, "opset": model.opset, "crop": overrides.get("crop"),
                     "trust": model.trust_checkpoint, **({"source": model.source} if model.source != "auto" else {})}

            def body(resume: bool) -> dict[str, Any]:
                # Only the crop shapes the graph (the key says so); resize comes along so that a
                # larger crop stays valid. Everything else is stamped afterwards.
                geometry = {k: overrides[k] for k in ("crop", "resize") if k in overrides and "crop" in overrides}
                result = export_onnx(
                    model.arch, checkpoint, exported, opset=model.opset, num_classes=model.num_classes,
                    spec_overrides=geometry, trust_checkpoint=model.trust_checkpoint, source=model.source,
                )
                if result.checkpoint is not None:
                    log.info("[export] source %s", result.checkpoint.describe_source())
                return {"verification": result.verification.to_dict() if result.verification else None,
                        "source": result.checkpoint.describe_source() if result.checkpoint else None}

            source_key, _ = self.stage("export", graph, [exported], body, clear=[exported.parent])
        return self._stamp(source_key, exported, overrides)

    def _stamp(self, source_key: str, exported: Path,
               overrides: dict[str, Any]) -> tuple[str, Path, PreprocessSpec, ModelInfo]:
        """``model.onnx`` = the exported graph with the pipeline's final spec in its metadata."""
        target = self.work.model
        info = read_model_info(exported)
        resolved = resolve_spec(model=exported, overrides=overrides)
        if resolved is None or resolved.spec is None:
            raise InferKitError(
                f"{exported} carries no preprocessing spec",
                hint="export it with 'infer-kit export', or give [model] spec = { resize = ..., crop = ... }",
            )
        spec = resolved.spec

        def body(resume: bool) -> dict[str, Any]:
            proto = load_onnx(exported)
            stamp(proto, spec, pipeline_source=str(exported))
            with atomic_write(target, "wb") as handle:
                handle.write(proto.SerializeToString())
            return {"spec": spec.to_dict()}

        key, _ = self.stage("stamp spec", {"source": source_key, "spec": spec.to_dict()}, [target], body)
        return key, target, spec, info

    def atc(self, model_key: str, model_path: Path, calibration: tuple[str, Path] | None) -> list[tuple[str, Row]]:
        """One artifact per (precision mode, batch size); the range check and INT8 read ``calibration``."""
        atc = self.config.atc
        aipp_payload = atc.aipp if atc.aipp in ("auto", "none") else file_fingerprint(atc.aipp)
        compiled = []
        for precision in atc.precision_modes:
            for batch in atc.batch_sizes:
                name = f"bs{batch}_{precision}"
                # INT8 is always emulated: on a device it is AMCT's job, which infer-kit does not run
                emulate = True if precision == "int8" else self.config.emulate_flag()
                payload = {"model": model_key, "soc": atc.soc, "batch": batch, "precision": precision,
                           "aipp": aipp_payload, "emulate": emulate if precision == "int8" else atc.emulate,
                           "calibration": calibration[0] if calibration else None, "samples": atc.samples}
                manifest = self.work.artifact_manifest(name)
                key, pending = self.task(f"atc {name}", payload, [manifest], compile_row, model_path,
                                         self.work.artifact_base(name), soc=atc.soc, batch=batch,
                                         precision=precision, aipp=atc.aipp, emulate=emulate,
                                         calibration=calibration[1] if calibration else None, samples=atc.samples)
                compiled.append((key, name, manifest, batch, precision, pending))
        rows = []
        for key, name, manifest, batch, precision, pending in compiled:
            pending.result()  # the row's layout is its artifact's
            description = describe_model(manifest)
            backend = "OM (Ascend)" if description.kind == "om" else "emulated OM (ORT)"
            check = (description.manifest or {}).get("range_check") or {}
            warns = any(f.get("kind") in ("overflow", "underflow") for f in check.get("findings", []))
            rows.append((key, Row(name, manifest, description.layout or "float", batch, precision, backend,
                                  range_check=check.get("summary"), range_warning=warns)))
        return rows

    def layers(self, row: Row, row_key: str, reference_key: str, prep_key: str, prep: Path) -> Path:
        """The per-layer comparison of a row that missed its agreement gate against the fp32 model."""
        out = self.work.layers_json(row.name)
        payload = {"model": row_key, "reference": reference_key, "inputs": prep_key, "samples": LAYER_SAMPLES}

        def body(resume: bool) -> dict[str, Any]:
            result = compare_layers(self.work.model, row.model, prep, samples=LAYER_SAMPLES, output=out)
            first = result.first
            return {"first": first.tensor if first else None, "layers": len(result.layers)}

        self.stage(f"layers {row.name}", payload, [out], body, clear=[out])
        return out

    def preprocess(self, layout: str, spec: PreprocessSpec) -> tuple[str, Path]:
        data = self.config.data
        dst = self.work.prep_dir(layout)
        relevant = spec.layout_fields(layout)
        # The labels are checked here but do not change the tensors: a label fix reruns only evaluate (and compare).
        payload = {"images": folder_fingerprint(data.images), "limit": data.limit, "layout": layout,
                   "spec": relevant}

        def body(resume: bool) -> dict[str, Any]:
            cluster = self.config.cluster
            engine = {"engine": "ray", "address": cluster.address} if self.cluster is not None else {}
            result = preprocess(data.images, dst, spec=spec, layout=layout, workers=data.workers, limit=data.limit,
                                labels=data.labels, resume=resume, **engine)
            return {"count": result.count, "labels": str(result.labels_path) if result.labels_path else None,
                    "class_index": str(result.class_index_path) if result.class_index_path else None}

        key, info = self.stage(f"preprocess {layout}", payload, [self.work.prep_manifest(layout)], body, clear=[dst])
        self.prep_info[layout] = info
        return key, dst

    def run(self, row: Row, row_key: str, prep_key: str, prep: Path) -> tuple[str, Pending]:
        run_cfg = self.config.run
        result_dir, summary = self.work.run_dir(row.name), self.work.run_summary(row.name)
        payload = {"model": row_key, "inputs": prep_key, "outfmt": run_cfg.outfmt, "threads": run_cfg.threads,
                   "batch": row.batch, "warmup": run_cfg.warmup_count}
        model = row.model if row.is_reference else describe_model(row.model).path
        threads = run_cfg.threads
        if threads is None and self.cluster is not None and model.suffix != ".om":
            threads = self.cluster.run_threads  # a run task uses the CPUs it asked for, not the whole node
        if row.is_torch:  # the checkpoint as export reads it (same source), fed the pipeline's float tensors
            section = self.config.model
            return self.task(f"run {row.name}", payload, [result_dir, summary], run_torch_row, model, prep,
                             self.work.runs_dir, row.name, clear=[result_dir, summary], is_run=True,
                             arch=section.arch, source=section.source, num_classes=section.num_classes,
                             trust=section.trust_checkpoint, spec=self.spec, outfmt=run_cfg.outfmt, batch=row.batch,
                             warmup_count=run_cfg.warmup_count, threads=threads)
        return self.task(f"run {row.name}", payload, [result_dir, summary], run_row, model, prep, self.work.runs_dir,
                         row.name, clear=[result_dir, summary], is_run=True, outfmt=run_cfg.outfmt, batch=row.batch,
                         warmup_count=run_cfg.warmup_count, threads=threads)

    def evaluate(self, row: Row, run_key: str, ran: Pending, labels: Path) -> Pending:
        outputs = [self.work.result_json(row.name), self.work.details_json(row.name)]
        payload = {"run": run_key, "labels": file_fingerprint(labels), "topk": self.config.evaluate.topk,
                   "limit": self.config.data.limit}
        # The run stage scores every preprocessed image or fails, so a labelled image without an output is one the
        # image folder does not hold (a [data] limit, or the full val_label.txt beside a subset of the images, which
        # the ModelZoo scorer accepts too), never a missing shard; an output without a label is still an error.
        return self.task(f"evaluate {row.name}", payload, outputs, evaluate_row, self.work.run_dir(row.name), labels,
                         outputs[0], outputs[1], after=(ran,), topk=self.config.evaluate.topk,
                         allow_partial=True, workers=self._task_workers())[1]

    def compare(self, row: Row, run_key: str, reference_key: str, ran: tuple[Pending, ...], labels: Path,
                reference: str = REFERENCE_ROW) -> Pending:
        """``row``'s outputs image by image against a reference row's (the fp32 ONNX model, or eager torch)."""
        out = self.work.compare_torch_json(row.name) if reference == TORCH_ROW else self.work.compare_json(row.name)
        payload = {"run": run_key, "reference": reference_key, "labels": file_fingerprint(labels)}
        name = f"compare {row.name}" + (" with torch" if reference == TORCH_ROW else "")
        return self.task(name, payload, [out], compare_row, self.work.run_dir(row.name), self.work.run_dir(reference),
                         labels, out, after=ran, workers=self._task_workers())[1]

    def _task_workers(self) -> int | None:
        """Scoring processes: the CPUs a cluster task asked for; here, the stage's own default."""
        return self.cluster.task_cpus if self.cluster is not None else None

    # ---- gates ---------------------------------------------------------------------------
    def gate_failures(self, rows: list[tuple[Row, dict[str, Any], dict[str, Any] | None]]) -> list[str]:
        """One message per gate a row misses, named by the row."""
        gates = self.config.gates
        failures = []
        for row, evaluation, comparison in rows:
            messages = gates.accuracy_failures(top1=evaluation["top1"], top5=evaluation.get("top5"),
                                               classes=evaluation.get("classes", 0))
            if comparison is not None:
                messages += gates.agreement_failures(disagreements=comparison["changed"],
                                                     images=evaluation["images"])
            failures += [f"{row.name}: {message}" for message in messages]
        return failures


def run_pipeline(config: PipelineConfig, *, force: bool = False) -> PipelineResult:
    """Run (or reuse) every stage the config asks for and write the report; gates are checked last."""
    if config.cluster.engine == "ray":
        import_ray()  # a missing optional backend first (exit 2), as every command says it
    _check_inputs(config)
    # one pipeline per work folder: a second would rewrite the same stage outputs and the state file under it
    with hold(WorkFolder(config.work_dir).lock_file, what=f"pipeline work folder {config.work_dir}"):
        return _run_locked(config, force)


def _run_locked(config: PipelineConfig, force: bool) -> PipelineResult:
    pipe = _Pipeline(config, force)
    work = pipe.work
    trained = pipe.train()
    model_key, model_path, spec, model_info = pipe.export(trained)
    pipe.spec = spec
    # the tensors first: the range check and INT8 calibration read them
    layouts = {"float" if config.atc.aipp == "none" else "aipp"}
    layouts |= {"float"} if config.compare.reference or config.compare.torch else set()
    preps = {layout: pipe.preprocess(layout, spec) for layout in sorted(layouts)}
    rows = pipe.atc(model_key, model_path, _calibration(config, preps))
    if config.compare.reference:
        rows.append((model_key, Row(REFERENCE_ROW, model_path, "float", max(config.atc.batch_sizes), "fp32",
                                    "ONNX Runtime")))
    if config.compare.torch:
        if pipe.checkpoint is None:
            raise InferKitError(f"{config.source or 'the config'}: [compare] torch = true needs a checkpoint",
                                hint="give [model] checkpoint = ... (or a [train] section), not an ONNX model")
        torch_key = make_key({"checkpoint": pipe.checkpoint[0], "arch": config.model.arch,
                              "source": config.model.source, "num_classes": config.model.num_classes})
        rows.append((torch_key, Row(TORCH_ROW, pipe.checkpoint[1], "float", max(config.atc.batch_sizes), "fp32",
                                    "torch (eager)")))
    for layout in sorted({row.layout for _, row in rows} - set(preps)):
        preps[layout] = pipe.preprocess(layout, spec)
    labels = _labels(config, pipe.prep_info)

    planned = []
    runs: dict[str, tuple[str, Pending]] = {}
    for row_key, row in rows:
        prep_key, prep = preps[row.layout]
        runs[row.name] = pipe.run(row, row_key, prep_key, prep)
        planned.append((row, pipe.evaluate(row, runs[row.name][0], runs[row.name][1], labels)))
    pending = []
    for row, evaluation in planned:
        comparison = versus_torch = None
        (run_key, ran) = runs[row.name]
        if config.compare.reference and not row.is_reference:
            reference_key, reference = runs[REFERENCE_ROW]
            comparison = pipe.compare(row, run_key, reference_key, (ran, reference), labels)
        if config.compare.torch and not row.is_torch:
            torch_run_key, torch_ran = runs[TORCH_ROW]
            versus_torch = pipe.compare(row, run_key, torch_run_key, (ran, torch_ran), labels, reference=TORCH_ROW)
        pending.append((row, evaluation, comparison, versus_torch))
    if pipe.cluster is not None:
        pipe.cluster.wait()
    results = [(row, evaluation.result(), comparison.result() if comparison else None)
               for row, evaluation, comparison, _ in pending]
    torch_results = {row.name: versus.result() for row, _, _, versus in pending if versus is not None}

    measured = [row.measured(read_json(work.run_summary(row.name), what="run summary"), evaluation, comparison,
                             work.result_json(row.name), torch_results.get(row.name))
                for row, evaluation, comparison in results]
    reference = next((row for row in measured if row.name == REFERENCE_ROW), None)
    measured = [row.against(reference) for row in measured]
    gate = config.compare.max_disagreement
    row_keys = {row.name: key for key, row in rows}
    for i, row in enumerate(measured):  # where a row loses agreement, say which layer is to blame
        emulated = describe_model(row.model).kind == "emulated-om" if not row.is_reference else False
        if gate is not None and row.agreement is not None and row.agreement < 100 - gate and emulated:
            prep_key, prep = preps[row.layout]
            measured[i] = replace(row, layers_json=pipe.layers(row, row_keys[row.name], model_key, prep_key, prep))
    per_image = _per_image(work, measured)
    data = build_report_data(config, work, spec, model_info, measured, pipe.outcomes, labels, pipe.prep_info,
                             pipe.train_info, per_image)
    write_report(data, work.report_md, work.report_html)
    write_json_atomic(work.summary_json, {"name": config.name, "spec": spec.to_dict(),
                                          "rows": [row.record() for row in measured],
                                          "stages": [o.__dict__ for o in pipe.outcomes],
                                          "report": str(work.report_html)})
    return PipelineResult(work.root, measured, pipe.outcomes, work.report_md, work.report_html, work.summary_json,
                          gate_failures=pipe.gate_failures(results), images=data.images)


PER_IMAGE_LIMIT = 24  # the report lists every image (with a thumbnail) up to this many


def _per_image(work: WorkFolder, rows: list[Row]) -> dict[str, dict[str, Any]] | None:
    """row -> image -> its top-1 and probability, when the run is small enough to show image by image."""
    if not rows or (rows[0].images or 0) > PER_IMAGE_LIMIT:
        return None
    return {row.name: predictions(work.run_dir(row.name), top=1, limit=PER_IMAGE_LIMIT) for row in rows}


LAYER_SAMPLES = 8  # images the per-layer comparison of a row below its gate runs on


def _calibration(config: PipelineConfig, preps: dict[str, tuple[str, Path]]) -> tuple[str, Path] | None:
    """(key, folder) of the images the range check and INT8 read: [atc] calibration, else the float tensors,
    else the aipp ones."""
    if config.atc.calibration is not None:
        return folder_fingerprint(config.atc.calibration), config.atc.calibration
    return preps.get("float") or preps.get("aipp")


def _check_inputs(config: PipelineConfig) -> None:
    """Every file and folder the config names exists, before any stage runs (a missing label file would
    otherwise surface only after export, atc, preprocess and run)."""
    where = str(config.source) if config.source else "command line"
    wanted: list[tuple[str, Path | None, bool]] = [
        ("[model] onnx", config.model.onnx, False),
        ("[model] checkpoint", None if config.train else config.model.checkpoint, False),
        ("[train] data", config.train.data if config.train else None, True),
        ("[data] images", config.data.images, True),
        ("[data] labels", config.data.labels, False),
        ("[atc] calibration", config.atc.calibration, True),
        ("[atc] aipp", None if config.atc.aipp in ("auto", "none") else Path(config.atc.aipp), False),
    ]
    for key, path, folder in wanted:
        if path is None:
            continue
        if not path.exists():
            raise InferKitError(f"{where}: {key} {path} does not exist", hint="fix the path (relative paths are "
                                "relative to the config file; flags to the current folder)")
        if folder and not path.is_dir():
            raise InferKitError(f"{where}: {key} {path} is not a folder", hint="give a folder of images")
        if not folder and not path.is_file():  # [data] labels too: the report reads it as a val_label.txt
            raise InferKitError(f"{where}: {key} {path} is not a file", hint="give the file itself")
    check_output_dir(config.work_dir, what=f"work_dir of {where}")
    work = WorkFolder(config.work_dir)
    for key, path, _ in wanted:
        entry = work.managed_entry(path) if path is not None else None
        if entry is not None:  # a stage would delete or overwrite it (train/ is cleared before training)
            raise InferKitError(f"{where}: {key} {path} is inside {entry}, which the pipeline replaces",
                                hint="choose another work_dir (the default is pipeline-work beside the config), or "
                                "move the input out of it")
    for key, path, folder in wanted:
        if folder and path is not None and (work.root.resolve() == path.resolve() or path.resolve() in
                                            work.root.resolve().parents):
            raise InferKitError(f"{where}: work_dir {work.root} is inside {key} {path}: the pipeline would write "
                                "among its inputs (a [train] stage starts by clearing work_dir/train)",
                                hint="choose a work_dir outside the input folders")


def _labels(config: PipelineConfig, prep_info: dict[str, dict[str, Any]]) -> Path:
    if config.data.labels is not None:
        return config.data.labels
    for info in prep_info.values():
        if info.get("labels"):
            return Path(info["labels"])
    raise InferKitError(
        f"no labels for {config.data.images}",
        hint="set [data] labels = \"val_label.txt\", or point images at a class-folder tree",
    )


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
