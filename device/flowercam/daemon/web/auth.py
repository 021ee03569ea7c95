"""Who may ask the daemon's HTTP endpoints: a request must name this daemon in its Host header (no web page can
reach it by DNS rebinding), and a change needs the owner's token, kept in a file and never logged."""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from pathlib import Path

TOKEN_HEADER = "X-Flowercam-Token"


def read_token(path: Path) -> str:
    """The labelling token in ``path``, made (random, mode 0600) at the first start."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(18) + "\n")
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < 8:
        raise OSError(f"{path}: the labelling token is shorter than 8 characters")
    return token


def authorised(token: str, given: str | None) -> bool:
    """Whether a request's token is the owner's (constant-time compare; no token set: nobody is)."""
    return bool(token) and given is not None and hmac.compare_digest(given.encode(), token.encode())


def host_allowed(header: str | None, names: frozenset[str]) -> bool:
    """Whether a request's Host header names this daemon: an IP address, or one of ``names`` (localhost, the
    bind's host and ``[http] hosts``). Anything else is a name the owner never gave it, e.g. a web page's DNS
    rebinding; no header at all (an HTTP/1.0 client, never a browser) is let through."""
    if header is None:
        return True
    host = header.strip().lower()
    if host.startswith("["):  # [an IPv6 address]:port
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:  # name:port, IPv4:port
        host = host.partition(":")[0]
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host.rstrip(".") in names
