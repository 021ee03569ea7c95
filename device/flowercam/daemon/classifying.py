"""The classifier a daemon config names: the model knows nothing of the daemon, the daemon builds its classifier."""

from __future__ import annotations

from pathlib import Path

from ..model.classifier import Classifier
from .config import Config


def classifier_for(config: Config, with_adapter: bool = True) -> Classifier:
    """The classifier a config names, with its adapter (raises ModelError, AdapterError or RuntimeMissing);
    built anew on reload, so a new adapter is applied on SIGHUP without a restart. With ``[review]`` on, an
    adapter file that does not exist yet is none: the first learn from the review writes it."""
    threshold = config.model.uncertain_below if config.model.uncertain_below >= 0 else None
    adapter = Path(config.model.adapter) if config.model.adapter and with_adapter else None
    if adapter is not None and config.review.dir and not adapter.exists():
        adapter = None
    return Classifier(Path(config.model.path) if config.model.path else None, config.model.threads,
                      config.model.edgetpu, uncertain_below=threshold, crops=config.model.crops or None,
                      adapter=adapter)
