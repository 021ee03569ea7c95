"""``flowercam watch`` and ``flowercam daemon``: a camera or stream, classified live."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import FlowercamError
from ..model.runtime import cores
from .app import (
    AdapterOpt,
    CropsOpt,
    EdgeTpuOpt,
    JsonOpt,
    ModelOpt,
    ThreadsOpt,
    app,
    fail,
    open_classifier,
)


@app.command()
def watch(
    source: Annotated[str, typer.Option("--source", "-s", help="picamera2, opencv:N, a video file or a stream URL.")
                      ] = "picamera2",
    model: ModelOpt = None,
    threads: ThreadsOpt = None,
    edgetpu: EdgeTpuOpt = False,
    fps: Annotated[float, typer.Option(min=0.1, max=120, help="Classify at most this often.")] = 5.0,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Stop after this many classifications.")] = None,
    every_frame: Annotated[bool, typer.Option("--every-frame", help="A video file: classify its every frame in "
                                              "turn, as fast as --fps allows (default: play it at its own speed, "
                                              "as a camera).")] = False,
    as_json: JsonOpt = False,
    crops: CropsOpt = None,
    adapter: AdapterOpt = None,
) -> None:
    """Live classification from a camera or video: label, confidence, fps, inference ms. Ctrl-C stops."""
    from ..sources import SourceError, check_uri, open_source
    from .watch import watch_loop

    try:
        check_uri(source)
    except SourceError as err:
        raise fail(str(err)) from None
    classifier = open_classifier(model, threads, edgetpu, crops=crops, adapter=adapter)
    try:
        with open_source(source) as frames:
            count, ended = watch_loop(classifier, frames, fps, max_frames, as_json, typer.echo, every_frame)
    except SourceError as err:
        raise fail(str(err), 1) from None
    except KeyboardInterrupt:
        typer.echo("", err=True)
        return
    typer.echo(f"{source}: {count} frames classified, " + ("source ended" if ended else "--max-frames reached"),
               err=True)


@app.command()
def daemon(
    config: Annotated[Path, typer.Option("--config", "-c", readable=False, help="TOML config file.")] = Path(
        "/etc/flowercam/flowercam.toml"),
    check_config: Annotated[bool, typer.Option("--check-config", help="Only check the config and the model it "
                                               "names (exit 0 or 2), e.g. before systemctl reload.")] = False,
) -> None:
    """Run the camera-classification daemon (systemd Type=notify): events as JSON Lines on stdout.
    SIGHUP (systemctl reload) re-reads the config and the model."""
    import logging

    from ..daemon.classifying import classifier_for, starting_classifier
    from ..daemon.daemon import Daemon
    from ..daemon.signals import Signals

    signals = Signals().install()  # first: a SIGTERM while the model loads still stops cleanly
    from ..daemon.config import load_config, network_peers
    from ..daemon.events import EventWriter

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..sources import check_backend

    try:
        cfg = load_config(config)
        check_backend(cfg.source.uri)
        classifier, problem = (classifier_for(cfg), None) if check_config else starting_classifier(cfg)
    except FlowercamError as err:  # a bad config, model or capture library (or adapter: --check-config)
        raise fail(str(err)) from None
    if check_config:
        from ..sources import redact

        typer.echo(f"{config}: ok (model {classifier.model.name}, source {redact(cfg.source.uri)})")
        if cfg.model.threads > cores():
            typer.echo(f"note: model.threads = {cfg.model.threads} is capped at this machine's {cores()} cores")
        peers = network_peers(cfg)
        if peers:
            typer.echo(f"note: flowercam.service reaches only loopback; allow {', '.join(peers)} in a drop-in "
                       "(IPAddressAllow=, see systemd/network.conf.example)")
        return
    try:
        events = EventWriter(cfg.events.file)
    except OSError as err:
        raise fail(f"events.file: {err}") from None
    from ..model.runtime import quiet_native_info

    quiet_native_info(False)  # from now on threads log while others build interpreters: fd 2 stays the journal's
    try:
        raise typer.Exit(Daemon(cfg, classifier, events, signals=signals, config_path=config, problem=problem).run())
    except FlowercamError as err:  # e.g. the HTTP port is taken: a setting to change, not to retry
        raise fail(str(err)) from None
    except OSError as err:
        raise fail(str(err), 1) from None
    finally:
        events.close()
