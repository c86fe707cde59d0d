"""SIGINT/SIGTERM as a flag the training loop checks after each step."""

from __future__ import annotations

import contextlib
import signal
from typing import Any


class StopSignals:
    """Turns SIGINT/SIGTERM into ``signum``, checked after each step; a second SIGINT stops at once."""

    def __init__(self):
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum, frame):
        self.signum = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __enter__(self):
        with contextlib.suppress(ValueError):  # not the main thread: no handlers
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
