"""What a reload (SIGHUP, ``systemctl reload``) changes, decided in one place: every setting that differs is
either applied at once or, if it needs a restart, kept at its running value, and the reload event names both."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from .config import Config

# Bound or opened once at start: a new value waits for the next restart (and the running one stays in force).
RESTART_NEEDED = ("events.file", "http.bind", "http.allow_remote", "http.hosts", "review.dir", "review.token_file",
                  "sightings.db", "sightings.keep_days")


@dataclass(frozen=True)
class Reload:
    """The config to run from now on, and which settings (``section.key``) it applied or left for a restart."""

    config: Config
    applied: tuple[str, ...]
    restart_needed_for: tuple[str, ...]

    def changed(self, section: str) -> bool:
        """Whether any setting of ``section`` was applied."""
        return any(name.startswith(section + ".") for name in self.applied)


def plan_reload(running: Config, new: Config) -> Reload:
    """Compare the running config with the new one, setting by setting."""
    applied, waiting, sections = [], [], {}
    for section in fields(Config):
        old_values, new_values = getattr(running, section.name), getattr(new, section.name)
        kept = {}
        for setting in fields(old_values):
            name = f"{section.name}.{setting.name}"
            before, after = getattr(old_values, setting.name), getattr(new_values, setting.name)
            if before == after:
                continue
            if name in RESTART_NEEDED:
                waiting.append(name)
                kept[setting.name] = before
            else:
                applied.append(name)
        sections[section.name] = replace(new_values, **kept)
    return Reload(Config(**sections), tuple(applied), tuple(waiting))
