"""The ``flowercam`` command line: the entry point. Each command module adds its commands to the one app
(:mod:`flowercam.cli.app`), in the order ``--help`` lists them."""

from __future__ import annotations

import importlib
import sys

import typer

from ..errors import FlowercamError
from .app import app

COMMAND_MODULES = ("photos", "camera", "bench", "learn", "season")  # the order of --help
for _name in COMMAND_MODULES:
    importlib.import_module(f".{_name}", __package__)


def main() -> None:
    """Console-script entry point: every error, a bad option included, is one line on stderr and exit 2."""
    try:
        code = app(standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    except FlowercamError as err:  # the last net: any of our errors a command did not turn into a line itself
        typer.echo(f"flowercam: error: {err}", err=True)
        sys.exit(2)
    except typer.TyperException as err:  # a usage error: a bad option, value or command
        message = err.format_message() if hasattr(err, "format_message") else str(err)
        if "\n" in message.strip():  # no arguments at all: the help itself
            typer.echo(message, err=True)
        else:
            command = "" if "No such command" in message else " ".join(a for a in sys.argv[1:2] if a[:1] != "-")
            typer.echo(f"flowercam: error: {message} (see flowercam {command + ' ' if command else ''}--help)",
                       err=True)
        sys.exit(getattr(err, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)
