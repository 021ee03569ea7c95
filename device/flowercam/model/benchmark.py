"""``flowercam bench``: the metrics of TFLite's benchmark_model, for one or several models in one process.

Several models are timed order-interleaved (run i of every model before run i+1), so that
machine noise falls on all of them alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .flatbuffer import check_model
from .resources import current_rss_mb, peak_rss_mb
from .runtime import make_interpreter, threads_for
from .sidecar import sha256_file


@dataclass
class ModelBench:
    """Timings of one model (milliseconds) and the memory it added."""

    model: Path
    runtime: str = ""
    threads: int | None = None
    init_ms: float = 0.0
    first_inference_ms: float = 0.0
    warmup_ms: list[float] = field(default_factory=list)
    runs_ms: list[float] = field(default_factory=list)
    rss_init_mb: float = 0.0
    interpreter: object = None
    inputs: list[np.ndarray] = field(default_factory=list)

    def invoke(self, i: int) -> float:
        detail = self.interpreter.get_input_details()[0]
        self.interpreter.set_tensor(detail["index"], self.inputs[i % len(self.inputs)])
        t0 = time.perf_counter()
        self.interpreter.invoke()
        return (time.perf_counter() - t0) * 1e3

    def report(self, rss_start: float) -> dict:
        runs = np.array(self.runs_ms)
        pct = {f"p{p}": round(float(np.percentile(runs, p)), 3) for p in (50, 90, 95, 99)}
        return {
            "model": str(self.model), "model_size_mb": round(self.model.stat().st_size / 1e6, 3),
            "runtime": self.runtime, "threads": self.threads, "init_ms": round(self.init_ms, 3),
            "first_inference_ms": round(self.first_inference_ms, 3),
            "warmup_avg_ms": round(float(np.mean(self.warmup_ms)), 3) if self.warmup_ms else None,
            "count": len(runs),
            "latency_ms": {"min": round(float(runs.min()), 3), "max": round(float(runs.max()), 3),
                           "mean": round(float(runs.mean()), 3), "std": round(float(runs.std()), 3), **pct},
            "throughput_ips": round(1e3 / float(runs.mean()), 2),
            "peak_rss_mb": round(peak_rss_mb(), 1),  # the process's, so far (every model loaded before this one)
            "rss_delta_mb": {"init": round(self.rss_init_mb, 1), "overall": round(current_rss_mb() - rss_start, 1)},
        }


def _inputs(interpreter, images: list[np.ndarray] | None, rng: np.random.Generator) -> list[np.ndarray]:
    detail = interpreter.get_input_details()[0]
    dtype, shape = np.dtype(detail["dtype"]), tuple(detail["shape"])
    if images:
        return [image[np.newaxis].astype(dtype) for image in images]
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return [rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True) for _ in range(4)]
    return [rng.uniform(0, 255, shape).astype(dtype) for _ in range(4)]


def benchmark(models: list[Path], runs: int = 50, warmup: int = 5, threads: int | None = None,
              edgetpu: bool = False, images: dict[Path, list[np.ndarray]] | None = None) -> list[dict]:
    """Benchmark ``models`` interleaved; returns one benchmark_model-style report per model."""
    rng = np.random.default_rng(0)
    rss_start = current_rss_mb()
    benches = []
    for path in models:
        check_model(Path(path), edgetpu, sha256_file(Path(path)))  # a broken file: one line, never a crash
        bench = ModelBench(Path(path), threads=threads_for(threads))
        before = current_rss_mb()
        t0 = time.perf_counter()
        bench.interpreter, bench.runtime = make_interpreter(path, threads, edgetpu)
        bench.init_ms = (time.perf_counter() - t0) * 1e3
        bench.rss_init_mb = current_rss_mb() - before
        bench.inputs = _inputs(bench.interpreter, (images or {}).get(Path(path)), rng)
        benches.append(bench)
    for bench in benches:
        bench.first_inference_ms = bench.invoke(0)
    for i in range(warmup):
        for bench in benches:
            bench.warmup_ms.append(bench.invoke(i + 1))
    for i in range(runs):
        for bench in benches[i % len(benches):] + benches[: i % len(benches)]:  # rotate who goes first
            bench.runs_ms.append(bench.invoke(i))
    return [bench.report(rss_start) for bench in benches]


def comparison_table(reports: list[dict]) -> str:
    """A plain-text table of the reports with ratios to the first model."""
    base = reports[0]
    lines = [f"{'model':40s} {'MB':>7s} {'mean ms':>8s} {'p50':>8s} {'p95':>8s} {'ips':>8s} {'x faster':>8s} "
             f"{'size x':>7s} {'RSS+ MB':>8s}"]
    for r in reports:
        lat = r["latency_ms"]
        speed = base["latency_ms"]["mean"] / lat["mean"]
        size = r["model_size_mb"] / base["model_size_mb"]
        lines.append(f"{Path(r['model']).name[:40]:40s} {r['model_size_mb']:7.2f} {lat['mean']:8.2f} "
                     f"{lat['p50']:8.2f} {lat['p95']:8.2f} {r['throughput_ips']:8.1f} {speed:8.2f} {size:7.2f} "
                     f"{r['rss_delta_mb']['init']:8.1f}")
    lines.append("RSS+: the memory each model added when it was loaded (the process's peak covers all of them)")
    return "\n".join(lines)


def pipeline(classifier, files: list[Path], runs: int) -> dict:
    """End-to-end decode + preprocess + inference on real photos: per-stage mean and p50/p95 (ms)."""
    stages: dict[str, list[float]] = {"decode": [], "preprocess": [], "inference": [], "total": []}
    for i in range(runs):
        result = classifier.classify(files[i % len(files)])
        for key in stages:
            stages[key].append(result.latency_ms[key])
    summary = {k: {"mean": round(float(np.mean(v)), 3), "p50": round(float(np.percentile(v, 50)), 3),
                   "p95": round(float(np.percentile(v, 95)), 3)} for k, v in stages.items()}
    return {"model": str(classifier.model), "runtime": classifier.runtime, "images": len(files), "runs": runs,
            "latency_ms": summary, "throughput_ips": round(1e3 / summary["total"]["mean"], 2),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def adapter_cost(classifier, runs: int, images: list[np.ndarray] | None = None) -> dict:
    """The adapter's added time per photo, in one run: the model alone on ``runs`` photos, then as many with the
    adapter applied to each output (ms, mean and p50 of each part). ``adapter_share``: the adapter's time over the
    model alone's; ``slowdown_ms``: the model's time with the adapter less its time alone, which shows a model the
    adapter slows (numpy's BLAS threads spinning beside the interpreter's once did: see ``flowercam/__init__.py``;
    run to run, about a tenth of a millisecond is this measure's noise on a 2-core x86-64)."""
    rng = np.random.default_rng(0)
    size = classifier.preprocess.size
    inputs = images or [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(4)]
    rule = (classifier.threshold, classifier.similarity_below)
    alone_ms, model_ms, adapter_ms = [], [], []
    warmup = min(10, runs)
    for with_adapter in (False, True):  # each after its own warm-up (the negative i)
        for i in range(-warmup, runs):
            t0 = time.perf_counter()
            scores = classifier.infer(inputs[i % len(inputs)])
            t1 = time.perf_counter()
            if with_adapter:
                classifier.adapter.apply(scores, rule)
            t2 = time.perf_counter()
            if i >= 0:
                (model_ms if with_adapter else alone_ms).append((t1 - t0) * 1e3)
                if with_adapter:
                    adapter_ms.append((t2 - t1) * 1e3)

    def stats(ms: list[float]) -> dict:
        return {"mean": round(float(np.mean(ms)), 4), "p50": round(float(np.median(ms)), 4)}

    alone = float(np.mean(alone_ms))
    return {"model": str(classifier.model), "adapter_classes": len(classifier.labels),
            "references": len(classifier.adapter.references), "runs": runs, "model_alone_ms": stats(alone_ms),
            "model_ms": stats(model_ms), "adapter_ms": stats(adapter_ms),
            "adapter_share": round(float(np.mean(adapter_ms)) / alone, 4),
            "slowdown_ms": round(float(np.mean(model_ms)) - alone, 4)}
