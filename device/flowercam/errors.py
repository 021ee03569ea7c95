"""The one base class of every error flowercam reports to a person (a one-line message, never a traceback)."""

from __future__ import annotations


class FlowercamError(Exception):
    """A problem with the user's input, files, model, config or camera; ``str()`` is the one-line message."""
