"""The ``build-models`` command line (workstation side): data, training, export. Each ``cli_*`` module adds its
commands to the one app (:mod:`build_models.cli_app`), in the order ``--help`` lists them."""

from __future__ import annotations

import importlib
import sys

import typer

from .cli_app import app

COMMAND_MODULES = ("cli_data", "cli_train", "cli_export", "cli_explain")  # the order of --help
for _name in COMMAND_MODULES:
    importlib.import_module(f".{_name}", __package__)


BUILD_PACKAGES = ("tensorflow", "keras", "scipy", "sklearn", "matplotlib", "rich", "lime")


def main() -> None:
    """Console-script entry point."""
    from flowercam.errors import FlowercamError

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except FlowercamError as err:  # the last net: any of our errors a command did not turn into a line itself
        typer.echo(f"build-models: error: {err}", err=True)
        sys.exit(2)
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] in BUILD_PACKAGES:
            typer.echo(f"build-models: error: {err.name} is not installed; build-models needs the [build] extra: "
                       "pip install 'flowercam[build]'", err=True)
            sys.exit(2)
        raise
