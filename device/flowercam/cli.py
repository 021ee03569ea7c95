"""The ``flowercam`` command line: the entry point. Each ``cli_*`` module adds its commands to the one app
(:mod:`flowercam.cli_app`), in the order ``--help`` lists them."""

from __future__ import annotations

import importlib
import sys

import typer

from .cli_app import app
from .errors import FlowercamError

COMMAND_MODULES = ("cli_photos", "cli_camera", "cli_bench", "cli_learn")  # the order of --help
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
