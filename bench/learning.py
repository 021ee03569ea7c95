"""Learn your garden, measured: the learning curve of every adapter kind, int8, with the device's own code.

1. Embeds garden_pool (the owner's photos), field_dev (scored, never learned from) and the Oxford test split
   once with the bundled model through ``flowercam.learning.learn.embed`` (cached under ``--work``).
2. For N = 0, 5, 10, 20, 50 and all photos per class of garden_pool, 3 seeded draws each, and every adapter
   kind: the adapter and its thresholds exactly as ``flowercam learn`` makes them (``learn_photos``), then
   field_dev top-1 per folder (tulip is the learned class), the confident-wrong rate over all 400, Oxford test
   top-1 and the rate answered uncertain, and the worst untaught Oxford class on the test split.
3. Untaught on everyday photos: the default kind learned without the rose folder, scored on field_dev's roses.
4. ``flowercam learn`` on all 400 photos under ``/usr/bin/time -v`` and ``flowercam bench --adapter``.

Usage: python bench/learning.py [--garden ../shared/garden_pool] [--field ../shared/field_dev]
       [--data ../shared/flowers102] [--work runs/learning]  ->  bench/results/learning.{json,md,png}
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info, write_results  # noqa: E402

RESULTS = Path(__file__).parent / "results"
SIZES = (0, 5, 10, 20, 50, 100)
DRAWS = 3
KNOWN = ("sunflower", "common_dandelion", "rose")
FOLDERS = (*KNOWN, "tulip")


def _embedded(classifier, name: str, paths: list[Path], truth: list, work: Path):
    from flowercam.learning.fit import Photos
    from flowercam.learning.learn import embed

    cache = work / f"{name}.npz"
    if not cache.exists():
        rows, photos, sim = embed(classifier, paths)
        np.savez(cache, emb=photos.embeddings, probs=photos.probs, sim=sim, truth=np.asarray(truth)[rows])
    data = np.load(cache)
    return Photos(data["emb"], data["probs"], np.full(len(data["truth"]), -1)), data["sim"], data["truth"]


def _folders(root: Path) -> tuple[list[Path], list[str]]:
    from flowercam.model.preprocess import find_images

    paths, names = [], []
    for name in FOLDERS:
        found = find_images([root / name])
        paths += found
        names += [name] * len(found)
    return paths, names


def _answers(probs, sim, below: tuple[float, float | None]):
    """(top-1 index, uncertain) by the device's rule."""
    from flowercam.model.scores import is_uncertain

    best = probs.argmax(1)
    return best, np.array([is_uncertain(p.max(), s, *below) for p, s in zip(probs, sim)])


def _score(labels, probs, sim, below, field_names, test_probs, test_sim, test_truth, taught) -> dict:
    from flowercam.model.labels import folder_class

    truth = np.array([folder_class(n, labels) if folder_class(n, labels) is not None else -1 for n in field_names])
    best, unsure = _answers(probs, sim, below)
    out = {f: float((best[field_names == f] == truth[field_names == f]).mean()) for f in FOLDERS}
    known = np.isin(field_names, KNOWN)
    out["known_top1"] = float((best[known] == truth[known]).mean())
    out["confident_wrong"] = float(((best != truth) & ~unsure).mean())
    tb, tu = _answers(test_probs, test_sim, below)
    out["test_top1"] = float((tb == test_truth).mean())
    out["test_uncertain"] = float(tu.mean())
    per_class = {c: float((tb[test_truth == c] == c).mean()) for c in range(102) if c not in taught}
    out["test_untaught_top1"] = float(np.mean(tb[~np.isin(test_truth, list(taught))] ==
                                              test_truth[~np.isin(test_truth, list(taught))]))
    out["per_class"] = per_class
    return out


def curve(classifier, garden, field, test, anchors, kinds: list[str]) -> tuple[list[dict], dict]:
    from flowercam.learning.fit import Photos, Recipe, predict
    from flowercam.learning.learn import learn_photos
    from flowercam.model.labels import folder_class

    sidecar = classifier.sidecar
    (g, g_sim, g_names), (f, f_sim, f_names), (t, t_sim, t_truth) = garden, field, test
    labels = (*sidecar.labels, "tulip")
    g_truth = np.array([folder_class(n, labels) for n in g_names])
    base_below = sidecar.thresholds_for("center")
    base = _score(sidecar.labels, f.probs, f_sim, base_below, f_names, t.probs, t_sim, t_truth, set())
    base_per_class = base.pop("per_class")
    rows = [{"kind": "none (the model alone)", "n": 0, "draws": [base]}]
    taught = {folder_class(n, labels) for n in FOLDERS}
    for kind in kinds:
        for n in SIZES[1:]:
            draws = []
            for seed in range(DRAWS if n < 100 else 1):
                rng = np.random.default_rng(seed)
                take = np.concatenate([rng.permutation(np.flatnonzero(g_names == name))[:n] for name in FOLDERS])
                own = Photos(g.embeddings[take], g.probs[take], g_truth[take])
                adapter = learn_photos(own, anchors, labels, sidecar, Recipe(kind=kind), g_sim[take])
                fp, fs = predict(adapter, f, f_sim)
                tp, ts = predict(adapter, t, t_sim)
                scored = _score(labels, fp, fs, adapter.thresholds_for("center"), f_names, tp, ts, t_truth,
                                {i for i in taught if i < 102})
                drops = {labels[c]: base_per_class[c] - top1 for c, top1 in scored.pop("per_class").items()}
                scored["worst_untaught_drop"] = float(max(drops.values()))
                scored["untaught_drops"] = {name: round(d, 4) for name, d in drops.items() if d > 0}
                draws.append(scored)
            rows.append({"kind": kind, "n": n, "draws": draws})
            means = {k: round(float(np.mean([d[k] for d in draws])), 3) for k in draws[0] if k != "untaught_drops"}
            print(kind, n, means, flush=True)
    return rows, {"field": {k: v for k, v in base.items()}}


def untaught_roses(classifier, garden, field, anchors) -> dict:
    """The default adapter learned without roses: field_dev's roses against the model alone."""
    from flowercam.learning.fit import Photos, predict
    from flowercam.learning.learn import learn_photos
    from flowercam.model.labels import folder_class

    sidecar = classifier.sidecar
    (g, g_sim, g_names), (f, f_sim, f_names) = garden, field
    labels = (*sidecar.labels, "tulip")
    keep = g_names != "rose"
    truth = np.array([folder_class(n, labels) for n in g_names[keep]])
    adapter = learn_photos(Photos(g.embeddings[keep], g.probs[keep], truth), anchors, labels, sidecar,
                           base_similarity=g_sim[keep])
    roses = f_names == "rose"
    rose = labels.index("rose")
    fp, _ = predict(adapter, f.take(np.flatnonzero(roses)), f_sim[roses])
    return {"rose_top1_model": float((f.probs[roses].argmax(1) == rose).mean()),
            "rose_top1_adapted_without_roses": float((fp.argmax(1) == rose).mean())}


def costs(garden_root: Path, work: Path) -> dict:
    """``flowercam learn`` on the whole garden folder (wall, peak RSS) and the adapter's share of inference."""
    adapter = work / "garden.npz"
    done = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "flowercam", "learn", str(garden_root),
                           "--out", str(adapter)], capture_output=True, text=True, check=True)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", done.stderr).group(1)
    minutes, seconds = wall.split(":")[-2:]
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1)) / 1024
    bench = subprocess.run([sys.executable, "-m", "flowercam", "bench", "--adapter", str(adapter), "--runs", "500",
                            "--json"], capture_output=True, text=True, check=True)
    return {"learn_wall_s": round(int(minutes) * 60 + float(seconds), 1), "learn_peak_rss_mb": round(rss, 1),
            "learn_summary": done.stdout.strip(), "bench": json.loads(bench.stdout)}


def main(garden_root: Annotated[Path, typer.Option("--garden")] = Path("../shared/garden_pool"),
         field_root: Annotated[Path, typer.Option("--field")] = Path("../shared/field_dev"),
         data: Annotated[Path, typer.Option()] = Path("../shared/flowers102"),
         work: Annotated[Path, typer.Option()] = Path("runs/learning"), out: Path = RESULTS,
         kinds: Annotated[str, typer.Option(help="Adapter kinds, comma-separated.")] = "gate,residual,prototypes",
         ) -> None:
    from flowercam.learning.learn import anchors_for
    from flowercam.model.classifier import Classifier

    from build_models.data import load_flowers102

    work.mkdir(parents=True, exist_ok=True)
    classifier = Classifier(threads=2)
    test = load_flowers102(data).test
    garden = _embedded(classifier, "garden", *_folders(garden_root), work)
    field = _embedded(classifier, "field", *_folders(field_root), work)
    oxford = _embedded(classifier, "test", [s.path for s in test], [s.label for s in test], work)
    anchors = anchors_for(classifier.model)
    rows, base = curve(classifier, garden, field, oxford, anchors, kinds.split(","))
    result = {"machine": machine_info(), "model": classifier.sidecar.sha256, "sizes": list(SIZES), "rows": rows,
              "base": base, "untaught": untaught_roses(classifier, garden, field, anchors),
              "costs": costs(garden_root, work)}
    write_results(out, "learning", result, render)
    plot(result, out / "learning.png")


def _mean(draws: list[dict], key: str) -> tuple[float, float]:
    values = [d[key] for d in draws]
    return float(np.mean(values)), float(np.max(values) - np.min(values))


def plot(result: dict, png: Path) -> None:
    """Known-class and learned-tulip top-1 on field_dev against photos per class, one line per kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharex=True)
    base = next(r for r in result["rows"] if r["n"] == 0)
    for kind in sorted({r["kind"] for r in result["rows"] if r["n"]}):
        rows = [base] + [r for r in result["rows"] if r["kind"] == kind]
        n = [r["n"] for r in rows]
        for ax, key, title in zip(axes, ("known_top1", "tulip", "test_top1"),
                                  ("field_dev known classes top-1", "field_dev tulip (learned) top-1",
                                   "Oxford test top-1 (6,149)")):
            means = [_mean(r["draws"], key) for r in rows]
            ax.errorbar(n, [m for m, _ in means], yerr=[s / 2 for _, s in means], marker="o", capsize=3, label=kind)
            ax.set_title(title)
            ax.set_xlabel("garden photos per class")
            ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("Learning on the device from the owner's photos (int8, 3 draws; bars: spread)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _pct(x: float) -> str:
    return f"{x:.1%}"


def render(result: dict) -> str:
    lines = _lines(result)
    return "\n".join(lines + _untaught_table(result))


def _untaught_table(result: dict, kind: str = "gate", worst: int = 5) -> list[str]:
    """The untaught Oxford classes that fell most on the test split with the default adapter (mean over draws)."""
    lines = ["", f"**Untaught classes on the Oxford test split** (`{kind}`; the {worst} that fell most, mean over the "
             "draws; every other untaught class fell less):", "", "| N | class: test top-1 drop |", "|---|---|"]
    for row in result["rows"]:
        if row["kind"] != kind:
            continue
        names = {n for d in row["draws"] for n in d.get("untaught_drops", {})}
        mean = {n: np.mean([d["untaught_drops"].get(n, 0.0) for d in row["draws"]]) for n in names}
        top = sorted(mean.items(), key=lambda kv: (-round(kv[1], 6), kv[0]))[:worst]
        lines.append(f"| {row['n']} | " + ", ".join(f"{n}: {d:.1%}" for n, d in top) + " |")
    return lines


def _lines(result: dict) -> list[str]:
    lines = ["# Learn your garden: the learning curve (int8, on device)", "", header_markdown(result["machine"]),
             "Adapters fitted by `flowercam learn`'s own code on N photos per class of garden_pool (sunflower, "
             "common_dandelion, rose and the new class tulip), 3 seeded draws (one at N = 100: all of them); "
             "scored on field_dev (never learned from) and the Oxford test split. Mean, and the spread (max - min) "
             "in brackets. Confident-wrong: over all 400 field_dev photos. Worst untaught drop: the largest fall "
             "in test top-1 of an Oxford class nobody taught, against the model alone.", "",
             "![learning curve](learning.png)", "",
             "| kind | N | sunflower | dandelion | rose | known top-1 | tulip (learned) | confident-wrong | "
             "test top-1 | test uncertain | worst untaught drop |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        cells = []
        for key in ("sunflower", "common_dandelion", "rose", "known_top1", "tulip", "confident_wrong",
                    "test_top1", "test_uncertain", "worst_untaught_drop"):
            if key not in row["draws"][0]:
                cells.append("–")
                continue
            mean, spread = _mean(row["draws"], key)
            cells.append(_pct(mean) + (f" ({spread:.1%})" if len(row["draws"]) > 1 else ""))
        lines.append(f"| {row['kind']} | {row['n']} | " + " | ".join(cells) + " |")
    u, c = result["untaught"], result["costs"]
    lines += ["", "**Untaught on everyday photos.** The default adapter learned from garden_pool without its rose "
              f"folder: field_dev's roses top-1 {_pct(u['rose_top1_adapted_without_roses'])}, the model alone "
              f"{_pct(u['rose_top1_model'])}.", "",
              f"**Cost.** `flowercam learn` on all of garden_pool: "
              f"{c['learn_wall_s']} s wall, peak RSS {c['learn_peak_rss_mb']} MB. `flowercam bench --adapter`: "
              f"model {c['bench']['model_ms']['mean']} ms, adapter {c['bench']['adapter_ms']['mean']} ms "
              f"({c['bench']['adapter_share']:.1%} of the model's), {c['bench']['runs']} runs.", "",
              f"`flowercam learn` said: {c['learn_summary']}"]
    return lines


if __name__ == "__main__":
    typer.run(main)


def readme_block(result: dict, kind: str = "gate") -> str:
    """The README's learning figures (the default kind), from learning.json."""
    rows = {r["n"]: r["draws"] for r in result["rows"] if r["kind"] == kind}
    base = next(r["draws"] for r in result["rows"] if r["n"] == 0)
    mean = {n: {key: _mean(draws, key)[0] for key in draws[0] if key != "untaught_drops"} for n, draws in rows.items()}
    top = max(rows)
    tests = [m["test_top1"] for m in mean.values()]
    unsure = [m["test_uncertain"] for m in mean.values()]
    c = result["costs"]
    return (f"With the default adapter (`{kind}`), field_dev's known classes go from "
            f"{_pct(_mean(base, 'known_top1')[0])} top-1 (the model alone) to {_pct(mean[20]['known_top1'])} "
            f"at 20 photos per class and "
            f"{_pct(mean[top]['known_top1'])} with all {top}; tulips, a class it did not have, to "
            f"{_pct(mean[20]['tulip'])} and {_pct(mean[top]['tulip'])}; the Oxford test split stays at "
            f"{_pct(min(tests))}–{_pct(max(tests))} top-1 (the model alone: {_pct(_mean(base, 'test_top1')[0])}) "
            f"with {_pct(min(unsure))}–{_pct(max(unsure))} answered uncertain. Learning all of garden_pool "
            f"({top * len(FOLDERS)} photos) takes "
            f"{c['learn_wall_s']} s and {c['learn_peak_rss_mb']:.0f} MB; the adapter adds "
            f"{c['bench']['adapter_share']:.1%} to an inference.")
