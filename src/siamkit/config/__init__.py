"""Typed, validated run configuration and the named presets.

A :class:`Config` has five sections (``method``, ``model``, ``data``, ``optim``, ``train``), each a
frozen dataclass that validates itself (:mod:`siamkit.config.schema`);
:func:`build_config` merges defaults, a preset and overrides (:mod:`siamkit.config.build`).
"""

from siamkit.config.build import Config, build_config, parse_value, read_config_file, split_key, valid_keys
from siamkit.config.presets import PRESETS, Preset, presets_table
from siamkit.config.schema import (
    BN_MODES,
    LR_SCALINGS,
    LR_SCHEDULES,
    OPTIMIZERS,
    PRED_HIDDEN,
    PROJ_DIM,
    SECTIONS,
    TAU_SCHEDULES,
    DataConfig,
    MethodConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
)
from siamkit.errors import ConfigError
from siamkit.precision import PRECISIONS

__all__ = [
    "BN_MODES",
    "LR_SCALINGS",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "PRECISIONS",
    "PRED_HIDDEN",
    "PRESETS",
    "PROJ_DIM",
    "SECTIONS",
    "TAU_SCHEDULES",
    "Config",
    "ConfigError",
    "DataConfig",
    "MethodConfig",
    "ModelConfig",
    "OptimConfig",
    "Preset",
    "TrainConfig",
    "build_config",
    "parse_value",
    "presets_table",
    "read_config_file",
    "split_key",
    "valid_keys",
]
