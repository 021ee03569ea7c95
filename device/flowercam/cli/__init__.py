"""The ``flowercam`` command line: the entry point. Each command module adds its commands to the one app
(:mod:`flowercam.cli.app`), in the order ``--help`` lists them."""

from __future__ import annotations

import importlib
import sys

import typer

from ..errors import FlowercamError
from .app import app

COMMAND_MODULES = ("photos", "camera", "bench", "learn")  # the order of --help
for _name in COMMAND_MODULES:
    importlib.import_module(f".{_name}", __package__)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except FlowercamError as err:  # the last net: any of our errors a command did not turn into a line itself
        typer.echo(f"flowercam: error: {err}", err=True)
        sys.exit(2)
