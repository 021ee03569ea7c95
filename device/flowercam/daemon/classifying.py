"""The classifier a daemon config names: the model knows nothing of the daemon, the daemon builds its classifier."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..model.adapter import AdapterError
from ..model.classifier import Classifier
from .config import Config

log = logging.getLogger(__name__)


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


def starting_classifier(config: Config) -> tuple[Classifier, str | None]:
    """The classifier to start with, and what was given up for it: an adapter that cannot be used costs the
    learning, never the camera. A broken adapter file is moved aside (``NAME.broken-TIME``) for inspection, so
    the next Learn writes a fresh one. Anything wrong with the model itself still raises."""
    try:
        return classifier_for(config), None
    except AdapterError as err:
        problem = f"learning off, running the model alone: {err}"
        path = Path(config.model.adapter)
        if path.is_file():
            aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}")
            try:
                path.rename(aside)
                problem += f" (moved aside to {aside})"
            except OSError as move:
                problem += f" (could not move it aside: {move.strerror})"
        log.error("%s", problem)
        return classifier_for(config, with_adapter=False), problem


def reloaded_classifier(config: Config, running: Classifier) -> tuple[Classifier, str | None]:
    """The classifier a reloaded config names, and what was given up for it. An adapter that cannot be used fails
    the reload while a working one is in force (``running``'s is kept); when the camera already runs without one
    (it was broken at start, or is still missing), the rest of the config is applied and learning stays off."""
    try:
        return classifier_for(config), None
    except AdapterError as err:
        if running.adapter is not None:
            raise
        problem = f"learning off, running the model alone: {err}"
        log.error("reload: %s", problem)
        return classifier_for(config, with_adapter=False), problem
