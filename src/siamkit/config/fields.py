"""Config fields that carry their own rule, and the one check that enforces the rules.

:func:`num` declares a numeric field's range, :func:`choice` a string field's options (a tuple or
a registry's names); :func:`check_section` checks every field of a section alike and raises
:class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import field
from typing import Any

from siamkit.errors import ConfigError
from siamkit.registry import Registry


def num(default: Any, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False):
    """A numeric field with its range: ``lo <= v`` (``lo < v`` with ``lo_open``) and ``v <= hi``."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "lo_open": lo_open})


def choice(default: Any, options: tuple[str, ...] | Registry):
    """A string field whose value is one of ``options`` (a tuple, or a registry's names)."""
    return field(default=default, metadata={"options": options})


def _range_text(meta: dict[str, Any]) -> str:
    lo, hi = meta.get("lo"), meta.get("hi")
    parts = []
    if lo is not None:
        parts.append(f"{'>' if meta.get('lo_open') else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"<= {hi}" if isinstance(hi, int) else f"<= {hi:g}")
    return " and ".join(parts)


def check_section(section: str, obj: Any) -> None:
    """Check every field of ``obj`` (a section dataclass) against its declared rule."""
    for f in dataclasses.fields(obj):
        v, meta, key = getattr(obj, f.name), f.metadata, f"{section}.{f.name}"
        if v is None:
            continue
        if "options" in meta:
            options = meta["options"]
            if isinstance(options, Registry):
                options.get(v)
            elif v not in options:
                raise ConfigError(f"{key}={v!r} is not valid; choose one of {', '.join(options)}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{key}={v}: must be a finite number")
        if isinstance(v, int | float) and not isinstance(v, bool) and ("lo" in meta or "hi" in meta):
            lo, hi = meta.get("lo"), meta.get("hi")
            low = lo is not None and (v <= lo if meta.get("lo_open") else v < lo)
            if low or (hi is not None and v > hi):
                raise ConfigError(f"{key} must be {_range_text(meta)}, got {v}")
