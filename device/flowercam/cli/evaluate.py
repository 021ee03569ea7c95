"""``flowercam evaluate``: how a model does on a folder of labelled photos (one folder per class).

A folder named after a class (``_`` for spaces, any case) holds photos of that class; any
other folder holds an unknown species, whose right answer is "uncertain". A confident-wrong
answer is a wrong label that is not flagged uncertain: the worst a camera can tell its owner.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..model.labels import folder_class
from ..model.preprocess import find_images
from ..model.sidecar import photo_fingerprint


@dataclass
class FolderTally:
    """Counts for one class folder; ``index`` is None for an unknown species."""

    folder: str
    index: int | None
    photos: int = 0
    top1: int = 0
    top3: int = 0
    uncertain: int = 0
    confident_wrong: int = 0
    failed: int = 0
    wrong_labels: Counter = field(default_factory=Counter)

    def add(self, result) -> None:
        """Count one classification result."""
        self.photos += 1
        indices = [c.index for c in result.top_k]
        right = self.index is not None and indices[0] == self.index
        self.top1 += right
        self.top3 += self.index is not None and self.index in indices[:3]
        self.uncertain += result.uncertain
        if not right:
            self.wrong_labels[result.top_k[0].label] += 1
            self.confident_wrong += not result.uncertain

    def to_dict(self) -> dict:
        n = max(self.photos, 1)
        known = self.index is not None
        return {"folder": self.folder, "class": self.index, "photos": self.photos, "failed": self.failed,
                "top1": self.top1 / n if known else None, "top3": self.top3 / n if known else None,
                "uncertain": self.uncertain / n, "confident_wrong": self.confident_wrong / n,
                "wrong_labels": self.wrong_labels.most_common(5)}


def class_folders(root: Path) -> list[Path]:
    """The sub-folders of ``root`` that hold photos, sorted by name; for a dataset sorted into ``train/``,
    ``val/`` and ``test/`` folders (build-models' class-folder layout), those of ``test/``."""
    if not root.is_dir():
        raise FileNotFoundError(f"not a folder: {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = {p.name for p in folders}
    if "test" in names and names <= {"train", "val", "test"}:
        return class_folders(root / "test")
    return folders


def unseen(photos: list[Path], trained_on: frozenset[str]) -> tuple[list[Path], int]:
    """The photos the model was not trained or validated on (by content, whatever their names), and how many
    were left out."""
    if not trained_on:
        return photos, 0
    keep = []
    for photo in photos:
        try:
            seen = photo_fingerprint(photo) in trained_on
        except OSError:  # unreadable: classify_many reports it
            seen = False
        if not seen:
            keep.append(photo)
    return keep, len(photos) - len(keep)


def evaluate(classifier, root: Path, advance: Callable[[int], None] = lambda n: None,
             include_training: bool = False) -> dict:
    """Classify every photo under ``root``'s class folders (except those the model was trained or validated on,
    unless ``include_training``); returns the report (per folder and overall)."""
    folders = class_folders(root)
    if not folders:
        raise FileNotFoundError(f"no class folders in {root} (expected {root}/<class name>/*.jpg)")
    trained_on = frozenset(() if include_training else classifier.sidecar.trained_on)
    tallies, left_out, errors = [], 0, []
    for folder in folders:
        tally = FolderTally(folder.name, folder_class(folder.name, classifier.labels))
        photos, seen = unseen(find_images([folder]), trained_on)
        left_out += seen
        advance(seen)
        for path, result in classifier.classify_many(photos, k=3):
            if isinstance(result, Exception):
                tally.failed += 1
                errors.append({"path": str(path), "error": str(result)})
            else:
                tally.add(result)
            advance(1)
        tallies.append(tally)
    return {"model": str(classifier.model), "crops": classifier.crops, "folders": [t.to_dict() for t in tallies],
            "overall": overall(tallies, len(classifier.sidecar.labels)), "left_out_training_photos": left_out,
            "errors": errors}


def _rate(tallies: Iterable[FolderTally], attr: str) -> float | None:
    tallies = list(tallies)
    photos = sum(t.photos for t in tallies)
    return sum(getattr(t, attr) for t in tallies) / photos if photos else None


def _known(tallies: list[FolderTally]) -> dict:
    return {"photos": sum(t.photos for t in tallies), "top1": _rate(tallies, "top1"), "top3": _rate(tallies, "top3"),
            "uncertain": _rate(tallies, "uncertain"), "confident_wrong": _rate(tallies, "confident_wrong")}


def overall(tallies: list[FolderTally], base_classes: int) -> dict:
    """Figures over all known-class photos, apart over the model's own classes and the classes an adapter added
    (so runs with and without an adapter compare), all unknown-species photos, and everything."""
    known = [t for t in tallies if t.index is not None]
    unknown = [t for t in tallies if t.index is None]
    return {
        "known": _known(known),
        "model_classes": _known([t for t in known if t.index < base_classes]),
        "added_classes": _known([t for t in known if t.index >= base_classes]),
        "unknown": {"photos": sum(t.photos for t in unknown), "uncertain": _rate(unknown, "uncertain"),
                    "confident_wrong": _rate(unknown, "confident_wrong")},
        "all": {"photos": sum(t.photos for t in tallies), "failed": sum(t.failed for t in tallies),
                "confident_wrong": _rate(tallies, "confident_wrong")},
    }


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def format_report(report: dict) -> str:
    """A plain-text table of a report: one line per folder, then the overall figures."""
    lines = [f"{'folder':24s} {'photos':>6s} {'top-1':>7s} {'top-3':>7s} {'uncert.':>7s} {'conf.wrong':>10s}"
             "  most common wrong answers"]
    for f in report["folders"]:
        name = f["folder"] + ("" if f["class"] is not None else " (unknown)")
        wrong = ", ".join(f"{label} ({n})" for label, n in f["wrong_labels"][:3])
        lines.append(f"{name:24s} {f['photos']:6d} {_pct(f['top1']):>7s} {_pct(f['top3']):>7s} "
                     f"{_pct(f['uncertain']):>7s} {_pct(f['confident_wrong']):>10s}  {wrong}")
    o = report["overall"]
    lines.append(f"known classes: {o['known']['photos']} photos, top-1 {_pct(o['known']['top1'])}, top-3 "
                 f"{_pct(o['known']['top3'])}, uncertain {_pct(o['known']['uncertain'])}, confident-wrong "
                 f"{_pct(o['known']['confident_wrong'])}")
    if o["added_classes"]["photos"]:  # an adapter added classes: its figures apart, to compare with the model alone
        for key, title in (("model_classes", "  the model's classes"), ("added_classes", "  added classes")):
            lines.append(f"{title}: {o[key]['photos']} photos, top-1 {_pct(o[key]['top1'])}, uncertain "
                         f"{_pct(o[key]['uncertain'])}, confident-wrong {_pct(o[key]['confident_wrong'])}")
    if o["unknown"]["photos"]:
        lines.append(f"unknown species: {o['unknown']['photos']} photos, answered uncertain "
                     f"{_pct(o['unknown']['uncertain'])}")
    lines.append(f"all: {o['all']['photos']} photos, confident-wrong {_pct(o['all']['confident_wrong'])}"
                 + (f", {o['all']['failed']} unreadable" if o["all"]["failed"] else ""))
    if report.get("left_out_training_photos"):
        lines.append(f"left out: {report['left_out_training_photos']} photos the model was trained or validated on "
                     "(scoring them would flatter it; --include-training to count them)")
    return "\n".join(lines)
