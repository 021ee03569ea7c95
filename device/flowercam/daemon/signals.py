"""The daemon's signals: SIGTERM/SIGINT stop it, SIGHUP reloads its config and model."""

from __future__ import annotations

import signal


class Signals:
    """SIGTERM/SIGINT request a stop; SIGHUP requests a reload of the config and model (``systemctl reload``).
    Installed first thing, before the model loads, so a stop in the first moments still ends with STOPPING=1
    and a ``stop`` event (and a SIGHUP then is never a death, which systemd would count as a clean exit)."""

    def __init__(self) -> None:
        self.stopping = False
        self.reload = False

    def install(self) -> Signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        signal.signal(signal.SIGHUP, self._hangup)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file past its size limit: a failed write, not a death
        return self

    def _stop(self, signum, _frame) -> None:
        self.stopping = True

    def _hangup(self, signum, _frame) -> None:
        self.reload = True
