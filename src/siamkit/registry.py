"""One registry type for everything users extend: methods, backbones, datasets, evaluations.

A registry maps a name to an entry. ``register`` adds one (called with the entry, or as a
decorator); ``get`` looks one up and, for an unknown name, raises a :class:`ConfigError` that
lists every registered name and suggests the closest. The registries live here, below every layer
that fills or reads them: the configuration validates names against them, the layers above add
their built-in entries when imported, and importing :mod:`siamkit` imports them all.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Generic, TypeVar

from siamkit.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (``kind`` is the word used in messages, e.g. ``"backbone"``)."""

    def __init__(self, kind: str, key: str):
        self.kind = kind
        self.key = key  # the config key or flag that names an entry, for error messages
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T | None = None, *, replace: bool = False):
        """``register(name, entry)`` adds ``entry``; ``@register(name)`` adds the decorated object.
        A name is registered once unless ``replace=True``."""

        def add(obj: T) -> T:
            if not name or not isinstance(name, str):
                raise ValueError(f"a {self.kind} needs a non-empty string name, got {name!r}")
            if name in self._entries and not replace:
                raise ValueError(f"{self.kind} {name!r} is already registered (pass replace=True to replace it)")
            self._entries[name] = obj
            return obj

        return add(entry) if entry is not None else add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(self.unknown(name)) from None

    def unknown(self, name: object) -> str:
        """The message for an unknown name: the valid names, and the closest one when there is one."""
        close = difflib.get_close_matches(str(name), self._entries, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}; choose one of {', '.join(self._entries)}{hint}"

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(list(self._entries.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> T:
        return self.get(name)


METHODS: Registry = Registry("method", "method.name")  # siamkit.methods.MethodSpec
BACKBONES: Registry = Registry("backbone", "model.backbone")  # siamkit.models.backbones.Backbone
DATASETS: Registry = Registry("dataset", "data.dataset")  # siamkit.data.registry.Dataset
RECIPES: Registry = Registry("augmentation recipe", "data.recipe")  # siamkit.data.recipes.Recipe
EVALUATIONS: Registry = Registry("evaluation", "eval")  # siamkit.evaluate.registry.Evaluation


LIBRARIES = ("timm", "torchvision")  # model.backbone prefixes for other libraries' models


def split_spec(spec: str) -> tuple[str, str]:
    """``"timm:resnet18"`` -> ``("timm", "resnet18")``; ``"pkg.mod:make"`` -> ``("pkg.mod", "make")``."""
    source, _, name = spec.partition(":")
    return source, name


def check_spec(spec: str) -> None:
    """A backbone from elsewhere, checked for syntax only (nothing is imported): ``timm:NAME``,
    ``torchvision:NAME`` or ``package.module:factory`` (built by :mod:`siamkit.models.external`)."""
    source, name = split_spec(spec)
    ok_module = all(part.isidentifier() for part in source.split("."))
    if not name or not source or not (source in LIBRARIES or (ok_module and name.isidentifier())):
        raise ConfigError(
            f"model.backbone={spec!r}: expected a registered backbone, timm:NAME, torchvision:NAME "
            "or package.module:factory (a function returning an nn.Module that maps images to features)"
        )
