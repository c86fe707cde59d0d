"""The resolved :class:`Config`, and how it is built from defaults, a preset and overrides.

Values come, in order, from the defaults, a preset, the command-line flags and ``--set
section.key=value``. An unknown key or a bad value is an error that lists the valid choices.
Derived values (the scaled learning rate, steps per epoch) are computed where they are used and
never written back, so the saved config is what the user asked for.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from siamkit.config.presets import PRESETS
from siamkit.config.schema import SECTIONS, DataConfig, MethodConfig, ModelConfig, OptimConfig, TrainConfig
from siamkit.errors import ConfigError


@dataclass(frozen=True)
class Config:
    method: MethodConfig = field(default_factory=MethodConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """``{"section.key": value}`` for every key."""
        return {
            f"{s}.{f.name}": getattr(getattr(self, s), f.name)
            for s, cls in SECTIONS.items()
            for f in dataclasses.fields(cls)
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        return build_config(flat_values(d), _preset_name=d.get("preset"))


def flat_values(d: dict[str, Any]) -> dict[str, Any]:
    """``{"train": {"epochs": 3}}`` -> ``{"train.epochs": 3}``. Unknown sections and keys are
    errors that name the closest valid one."""
    if not isinstance(d, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(d).__name__}")
    unknown = sorted(map(str, set(d) - set(SECTIONS) - {"preset"}))
    if unknown:
        close = [c for u in unknown for c in difflib.get_close_matches(u, [*SECTIONS, "preset"], n=1)]
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ConfigError(f"unknown config section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}{hint}")
    for s in SECTIONS:
        if not isinstance(d.get(s) or {}, dict):
            raise ConfigError(f"config section {s!r} must be a mapping of keys, got {d[s]!r}")
    flat = {f"{s}.{k}": v for s in SECTIONS for k, v in (d.get(s) or {}).items()}
    for key in flat:
        split_key(key)
    return flat


def read_config_file(path: str | Path) -> tuple[dict[str, Any], str | None]:
    """A YAML config file (the ``config.yaml`` a run writes, or any subset of its sections and
    keys) -> its values as dotted keys, and the preset it names. Values are checked when the
    config is built (with the flags that override them)."""
    path = Path(path).expanduser()
    try:
        d = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"--config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"--config {path} is not valid YAML: {' '.join(str(e).split())}") from None
    try:
        values = flat_values({} if d is None else d)
    except ConfigError as e:
        raise ConfigError(f"--config {path}: {e}") from None
    preset = d.get("preset") if isinstance(d, dict) else None
    if preset is not None and not isinstance(preset, str):
        raise ConfigError(f"--config {path}: preset must be a preset's name, got {preset!r}")
    return values, preset


def valid_keys() -> list[str]:
    return [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


def _field_types(key: str) -> tuple[type, ...]:
    """The types a config key admits: ``int | None`` -> ``(int, NoneType)``."""
    section, name = split_key(key)
    hint = typing.get_type_hints(SECTIONS[section])[name]
    return typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)


def parse_value(key: str, text: str) -> Any:
    """Parse ``text`` for ``key`` by the field's declared type (``--set`` values)."""
    options = _field_types(key)
    if type(None) in options and text.strip().lower() in ("none", "null", ""):
        return None
    base = next(t for t in options if t is not type(None))
    if base is dict:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = None
        if not isinstance(value, dict):
            raise ConfigError(f"{key}={text!r}: expected a mapping, e.g. {key}='{{img_size: 32, patch_size: 4}}'")
        return value
    try:
        if base is bool:
            low = text.strip().lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ValueError
        return base(text)
    except ValueError:
        raise ConfigError(f"{key}={text!r}: expected {base.__name__}") from None


def split_key(key: str) -> tuple[str, str]:
    """``"section.name"`` -> ``(section, name)``; an unknown key names the closest valid one."""
    section, _, name = key.partition(".")
    if section not in SECTIONS or name not in {f.name for f in dataclasses.fields(SECTIONS[section])}:
        close = difflib.get_close_matches(key, valid_keys(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown config key {key!r}{hint}; valid keys: {', '.join(valid_keys())}")
    return section, name


def _check_type(key: str, value: Any) -> Any:
    options = _field_types(key)
    if value is None and type(None) in options:
        return None
    for t in options:
        if t is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if t is not type(None) and isinstance(value, t) and not (t is int and isinstance(value, bool)):
            return value
    names = " or ".join("None" if t is type(None) else t.__name__ for t in options)
    raise ConfigError(f"{key}={value!r}: expected {names}")


def _check_preset_sizes(preset: str, values: dict[str, Any]) -> None:
    """A preset's training crop size was chosen for its evaluation size: another ``data.image_size``
    needs its own ``data.train_size``, given, not kept from the preset."""
    chosen = PRESETS[preset].values
    if "data.train_size" in chosen and "data.image_size" in values and "data.train_size" not in values:
        raise ConfigError(
            f"preset {preset} trains on {chosen['data.train_size']} px crops (data.train_size) for its "
            f"evaluation size; with data.image_size={values['data.image_size']} give the training size too, "
            "e.g. --set data.train_size=N (the image size itself to train at full resolution)"
        )


def build_config(values: dict[str, Any], preset: str | None = None, _preset_name: str | None = None) -> Config:
    """Defaults, then ``preset``'s values, then ``values`` (dotted keys, already typed or strings
    from ``--set``). Every key and value is checked before anything runs."""
    merged: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        merged.update(PRESETS[preset].values)
        _check_preset_sizes(preset, values)
    merged.update(values)
    sections: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, value in merged.items():
        section, name = split_key(key)
        if isinstance(value, str) and str not in _field_types(key):
            value = parse_value(key, value)
        sections[section][name] = _check_type(key, value)
    built = {s: SECTIONS[s](**kw) for s, kw in sections.items()}
    if built["data"].local_crops and built["method"].spec().objective == "guided":
        raise ConfigError(
            f"data.local_crops={built['data'].local_crops}: method {built['method'].name} (GSG) pairs whole views "
            "of two images and takes no small crops; multi-crop serves the symmetric and ensemble methods "
            "(simsiam, byol, ensiam and their K-view forms)"
        )
    return Config(**built, preset=preset if preset is not None else _preset_name)
