"""What we tried for the field: framings, crop sets and "uncertain" rules, measured on float Keras features.

For each run given, the trained Keras model is run once over the Oxford train(+val) photos (class means), val,
test and field_dev (single and multi crops), and its logits and pooled features are cached in the run folder.
Each row of the table is then a rule on those numbers. Thresholds are chosen on field_dev only (never on test):
the pair that keeps the most right answers on known flowers with at least 85 % of the tulips (an unknown
species) answered uncertain and at most 10 % confident-wrong answers over all field_dev photos.

Usage: python bench/field_experiments.py runs/lite0-field-trainval runs/lite0-field-paper ...
  ->  bench/results/field_experiments.{json,md}  (the rows of earlier runs are kept unless recomputed)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from flowercam.model.labels import folder_class
from flowercam.model.scores import is_uncertain, softmax

sys.path.insert(0, str(Path(__file__).parent))
from machine import machine_info  # noqa: E402

FIELD_CLASSES = ("sunflower", "common_dandelion", "rose", "tulip")
TULIP_MARGIN = 0.85  # the floors are 80 % and 15 %: choose with a margin, for photos not in field_dev
WRONG_MARGIN = 0.10


def features(run: Path, data: Path | None, field: Path, test_stride: int = 3) -> dict[str, np.ndarray]:
    """Logits and pooled features of a run's Keras model (cached as ``RUN/field_features.npz``)."""
    cache = run / "field_features.npz"
    if cache.exists():
        return dict(np.load(cache))
    import keras

    from build_models.run import load_run

    config, model = load_run(run)
    both = keras.Model(model.input, keras.layers.Concatenate()([model.output, model.get_layer("pool").output]))
    return features_of(both, config, data, field, test_stride, cache)


def features_of(both, config, data: Path | None, field: Path, test_stride: int, cache: Path) -> dict[str, np.ndarray]:
    """Run ``both`` (raw RGB -> [logits, pooled features]) over train, val, test and field_dev; save to ``cache``."""
    from flowercam.model.preprocess import decode

    from build_models.data import load_flowers102
    from build_models.fitting import predict_batches
    from build_models.images import labels_of, load_arrays
    from build_models.samples import training_samples

    dataset = load_flowers102(data)
    pre = config_preprocess(config)
    n = dataset.num_classes
    out: dict[str, np.ndarray] = {}

    def run_on(name: str, arrays: np.ndarray) -> None:
        both_out = predict_batches(both, arrays, 32, f"{cache.parent.name}: {name}")
        out[f"{name}_logits"], out[f"{name}_emb"] = both_out[:, :n], both_out[:, n:]

    train_s, _ = training_samples(config, dataset)
    for name, samples in (("train", train_s), ("val", list(dataset.val)), ("test", list(dataset.test)[::test_stride])):
        run_on(name, load_arrays(samples, pre, f"loading {name}"))
        out[f"{name}_y"] = labels_of(samples)
    names = list(dataset.class_names)
    crops, labels = [], []
    for folder in FIELD_CLASSES:
        for path in sorted((field / folder).glob("*.jpg")):
            index = folder_class(folder, tuple(names))  # the device's one rule for folder names
            labels.append(-1 if index is None else index)
            crops.append(pre.crops(decode(path), "multi"))
    crops_arr = np.array(crops)  # (photos, 6, S, S, 3)
    run_on("field", crops_arr.reshape(-1, *crops_arr.shape[2:]))
    for key in ("field_logits", "field_emb"):
        out[key] = out[key].reshape(len(labels), 6, -1)
    out["field_y"] = np.array(labels)
    np.savez(cache, **out)
    return out


def probe_features(data: Path | None, field: Path, folder: Path, test_stride: int = 3) -> dict[str, np.ndarray]:
    """Frozen ImageNet lite0 features (no fine-tuning) with a logistic-regression head on trainval: how far the
    pretrained features alone go in the field (cached as ``FOLDER/field_features.npz``)."""
    cache = folder / "field_features.npz"
    if not cache.exists():
        import keras

        from build_models.backbones import get_backbone
        from build_models.presets import get_preset

        config = get_preset("lite0", protocol="trainval")
        backbone = get_backbone("lite0").build(config.size, "imagenet")
        pooled = keras.layers.GlobalAveragePooling2D(name="pool")(backbone.output)
        placeholder = keras.layers.Dense(102)(pooled)  # logits come from the probe fitted below
        model = keras.Model(backbone.input, keras.layers.Concatenate()([placeholder, pooled]))
        folder.mkdir(parents=True, exist_ok=True)
        features_of(model, config, data, field, test_stride, cache)
    f = dict(np.load(cache))
    from sklearn.linear_model import LogisticRegression

    probe = LogisticRegression(C=0.1, max_iter=3000).fit(f["train_emb"], f["train_y"])
    for split in ("train", "val", "test"):
        f[f"{split}_logits"] = probe.decision_function(f[f"{split}_emb"])
    shape = f["field_emb"].shape
    f["field_logits"] = probe.decision_function(f["field_emb"].reshape(-1, shape[-1])).reshape(*shape[:2], -1)
    return f


def config_preprocess(config):
    from flowercam.model.preprocess import Preprocess

    return Preprocess(config.size, config.crop_fraction)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """Probability that a random in-distribution score exceeds a random out-of-distribution one."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(len(inside)), np.zeros(len(outside))], np.r_[inside, outside]))


def scored(f: dict, temperature: float, crops: str) -> dict:
    """Probabilities and similarities per split for one crop set (multi: averaged over the 6 crops)."""
    means = unit(np.stack([unit(f["train_emb"])[f["train_y"] == c].mean(0) for c in range(f["train_logits"].shape[1])]))
    out = {}
    for split in ("val", "test"):
        out[split] = (softmax(f[f"{split}_logits"], temperature), (unit(f[f"{split}_emb"]) @ means.T).max(-1))
    idx = slice(0, 1) if crops == "center" else slice(0, 6)
    probs = softmax(f["field_logits"][:, idx], temperature).mean(1)
    sims = (unit(f["field_emb"][:, idx]) @ means.T).max(-1).mean(1)
    out["field"] = (probs, sims)
    return out


def figures(s: dict, f: dict, t_prob: float, t_sim: float | None) -> dict:
    """The must-show figures of one rule."""
    def uncertain(split):  # the device's one rule
        probs, sims = s[split]
        return is_uncertain(probs.max(1), sims, t_prob, t_sim)

    fy = f["field_y"]
    known, pred, unc = fy >= 0, s["field"][0].argmax(1), uncertain("field")
    right = pred == fy
    test_right = s["test"][0].argmax(1) == f["test_y"]
    return {"field_known_top1": float(right[known].mean()), "field_confident_wrong": float((~right & ~unc).mean()),
            "tulip_uncertain": float(unc[~known].mean()), "field_known_right_kept": float((right & ~unc)[known].mean()),
            "test_top1": float(test_right.mean()), "test_uncertain": float(uncertain("test").mean()),
            "val_top1": float((s["val"][0].argmax(1) == f["val_y"]).mean())}


def choose(s: dict, f: dict, use_similarity: bool) -> tuple[float, float | None] | None:
    """Thresholds chosen on field_dev: the most right answers kept on known flowers, with margins over the issue's
    floors (≥ 85 % of the tulips uncertain, ≤ 10 % confident-wrong over all field_dev photos)."""
    best, best_key = None, None
    for t_prob in np.round(np.arange(0.3, 0.96, 0.025), 3):
        sims = np.round(np.arange(0.40, 0.90, 0.01), 3) if use_similarity else [None]
        for t_sim in sims:
            r = figures(s, f, float(t_prob), None if t_sim is None else float(t_sim))
            if r["tulip_uncertain"] < TULIP_MARGIN or r["field_confident_wrong"] > WRONG_MARGIN:
                continue
            key = (r["field_known_right_kept"], -r["field_confident_wrong"])
            if best_key is None or key > best_key:
                best, best_key = (float(t_prob), None if t_sim is None else float(t_sim)), key
    return best


def rows_for(run: Path, f: dict, temperature: float, label: str) -> list[dict]:
    rows = []
    for crops in ("center", "multi"):
        s = scored(f, temperature, crops)
        known = f["field_y"] >= 0
        a_prob = a_sim = None
        if crops == "center":
            a_prob = auroc(s["test"][0].max(1), s["field"][0][~known].max(1))
            a_sim = auroc(s["test"][1], s["field"][1][~known])
        base = figures(s, f, 0.5, None)
        if crops != "center":
            base.update(val_top1=None, test_top1=None, test_uncertain=None)
        rows.append({"run": run.name, "what": f"{label}, {crops} crop(s), max-probability ≥ 0.5 (the old rule)",
                     **base, "auroc": a_prob})
        for use_similarity in (False, True):
            chosen = choose(s, f, use_similarity)
            if chosen is None:
                rows.append({"run": run.name, "what": f"{label}, {crops} crop(s), "
                             f"{'max-probability and similarity' if use_similarity else 'max-probability'}: no "
                             "thresholds meet the margins on field_dev"})
                continue
            t_prob, t_sim = chosen
            r = figures(s, f, t_prob, t_sim)
            if crops != "center":  # val and test features are of the centre crop only: not measured here
                r.update(val_top1=None, test_top1=None, test_uncertain=None)
            rule = f"max-probability ≥ {t_prob:g}" + (f" and similarity ≥ {t_sim:g}" if t_sim is not None else "")
            rows.append({"run": run.name, "what": f"{label}, {crops} crop(s), {rule} (chosen on field_dev)", **r,
                         "auroc": a_sim if use_similarity else a_prob, "crops": crops, "uncertain_below": t_prob,
                         "similarity_below": t_sim})
    return rows


def main(runs: Annotated[list[Path] | None, typer.Argument(help="Run folders.")] = None,
         data: Annotated[Path | None, typer.Option(envvar="FLOWERCAM_DATA")] = None,
         field: Path = Path("../shared/field_dev"), temperature: float = 1.0, test_stride: int = 3,
         probe: Annotated[Path | None, typer.Option(help="Also the frozen-feature linear probe, cached here.")] = None,
         ship: Annotated[str | None, typer.Option(help="Mark the rule shipped: the run's name and its crop set, "
                                                  "e.g. lite0-field2-trainval:center (similarity rule).")] = None,
         conclusion: Annotated[list[str] | None, typer.Option(help="What the table shows, in words.")] = None,
         label: Annotated[list[str] | None, typer.Option(help="RUN=TEXT: how a run is named in the table "
                                                         "(default: its preset, protocol and views).")] = None,
         out: Path = Path("bench/results")) -> None:
    path = out / "field_experiments.json"
    old = json.loads(path.read_text()) if path.exists() else {"rows": []}
    names = {r.name for r in runs or []}
    rows = [r for r in old["rows"] if r.get("run") not in names]
    labels = dict(item.split("=", 1) for item in label or [])
    for run in runs or []:
        config = json.loads((run / "config.json").read_text())
        name = labels.get(run.name, f"{config['preset']} ({config['protocol']}, {config.get('augment', 'classic')} "
                                    "views)")
        rows += rows_for(run, features(run, data, field, test_stride), temperature, name)
    if probe is not None:
        rows = [r for r in rows if r.get("run") != probe.name]
        rows += rows_for(probe, probe_features(data, field, probe, test_stride), temperature,
                         "lite0 frozen ImageNet features + logistic regression (trainval, no fine-tuning)")
    if ship:
        name, _, crops = ship.partition(":")
        for r in rows:
            r["shipped"] = r.get("run") == name and r.get("crops") == crops and r.get("similarity_below") is not None
        if not any(r["shipped"] for r in rows):
            raise typer.BadParameter(f"no similarity row for {ship}")
    result = {"machine": machine_info(), "note": NOTE, "temperature": temperature, "rows": rows,
              "conclusions": conclusion or old.get("conclusions", [])}
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    from field import render_experiments

    (out / "field_experiments.md").write_text(render_experiments(result))
    print(render_experiments(result))


NOTE = ("Float Keras figures, softmax at the temperature above (the shipped int8 model's own figures are in "
        "field.md). field_dev: 300 photos of three known classes and 100 tulips (unknown "
        "species); test: every third of the 6,149 Oxford test images (2,050), centre crop only (multi-crop rows "
        "show –; the shipped model's multi-crop test figures are in field.md); val: the 1,020 Oxford val images, "
        "training data under the trainval protocol. *AUROC*: how well the rule's score separates Oxford test "
        "images from tulips. Thresholds are chosen on field_dev only.")


if __name__ == "__main__":
    typer.run(main)
