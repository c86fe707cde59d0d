"""Methods as data: one frozen spec per method, and the registry.

The methods differ only in the target (the online encoder under a stop-gradient, or a momentum
copy), the objective (symmetric, guided, ensemble), the number of views and the predictor (MLP or
identity). One generic step (``siamkit.train.step``) runs them all.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from siamkit.config import TAU_SCHEDULES
from siamkit.errors import ConfigError
from siamkit.losses import GSG_MODES
from siamkit.registry import METHODS

TARGETS = ("stopgrad", "momentum")
OBJECTIVES = ("symmetric", "guided", "ensemble")

# Short citations; README.md gives the full references.
SIMSIAM = "SimSiam (Chen & He, CVPR 2021)"
BYOL = "BYOL (Grill et al., NeurIPS 2020)"
GSG = "GSG (Lee & Lee, NeurIPS 2023)"
ENSIAM = "EnSiam (Han & Lee, EAAI 2025)"


@dataclass(frozen=True)
class MethodSpec:
    """What a method is. Validated when built; derive variants with :func:`resolve_method`.

    - ``target``: ``stopgrad`` (targets from the online encoder, SimSiam) or ``momentum``
      (targets from an EMA copy, BYOL; ``tau``/``tau_schedule`` apply).
    - ``objective``: ``symmetric`` (SimSiam eq. 1 over all ordered view pairs), ``guided``
      (GSG eq. 6 with ``gsg_mode``), ``ensemble`` (EnSiam, optionally ``leave_one_out``).
    - ``views``: augmented views per image that enter the objective (2, or K).
    - ``shared_views``: GSG only. The paper draws two fresh views of the partner image (4 views
      per image per step); ``True`` reuses the partner's own two views from the batch instead
      (siamkit's option, off by default).
    """

    name: str
    target: str
    objective: str
    views: int = 2
    predictor: bool = True
    gsg_mode: str = "guided"
    shared_views: bool = False
    leave_one_out: bool = False
    tau: float = 0.99  # the GSG authors' code: a constant 0.99 for BYOL
    tau_schedule: str = "constant"
    paper: str = ""

    def __post_init__(self) -> None:
        def bad(msg: str) -> ConfigError:
            return ConfigError(f"method {self.name!r}: {msg}")

        if self.target not in TARGETS:
            raise bad(f"unknown target {self.target!r}; choose one of {', '.join(TARGETS)}")
        if self.objective not in OBJECTIVES:
            raise bad(f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        if not isinstance(self.views, int) or self.views < 2:
            raise bad(f"views must be an integer >= 2, got {self.views!r}")
        if self.objective == "guided":
            if self.views != 2:
                raise bad(
                    f"GSG compares two views of each image with two of its partner, so views must be 2, "
                    f"got {self.views}"
                )
            if self.gsg_mode not in GSG_MODES:
                raise bad(f"unknown gsg_mode {self.gsg_mode!r}; choose one of {', '.join(GSG_MODES)}")
        else:
            if self.gsg_mode != "guided":
                raise bad(f"gsg_mode={self.gsg_mode!r} applies only to the guided (GSG) objective")
            if self.shared_views:
                raise bad("shared_views applies only to the guided (GSG) objective")
        if self.leave_one_out and self.objective != "ensemble":
            raise bad("leave_one_out applies only to the ensemble (EnSiam) objective")
        if not 0.0 <= self.tau <= 1.0:
            raise bad(f"tau must lie in [0, 1], got {self.tau}")
        if self.tau_schedule not in TAU_SCHEDULES:
            raise bad(f"unknown tau_schedule {self.tau_schedule!r}; choose one of {', '.join(TAU_SCHEDULES)}")

    def resolve(self, **overrides: object) -> MethodSpec:
        """This spec with ``overrides`` applied (e.g. ``predictor=False``, ``views=8``); ``None``
        values are ignored, so options that were not given can be passed through. Unknown keys and
        invalid combinations raise :class:`ConfigError` naming the valid choices."""
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(given) - set(OVERRIDABLE))
        if unknown:
            raise ConfigError(f"unknown method option(s) {', '.join(unknown)}; valid: {', '.join(OVERRIDABLE)}")
        return dataclasses.replace(self, **given)

    @property
    def views_drawn(self) -> int:
        """Augmented views per image the data pipeline must produce for one step.

        GSG in the paper's form needs two extra views per image: the partner's two views are
        views 2 and 3 of the partner image (its own independent augmentations), so each step
        encodes 4 views per image, twice SimSiam's work (GSG Algorithm 1).
        """
        if self.objective == "guided" and not self.shared_views:
            return 4
        return self.views

    @property
    def label(self) -> str:
        """The name plus its non-default switches, for tables and plots."""
        if self.name not in METHODS:
            return self.name
        base = METHODS.get(self.name)
        extras = [
            f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if f.name not in ("name", "paper") and getattr(self, f.name) != getattr(base, f.name)
        ]
        if extras == ["predictor=False"]:
            return f"{self.name} (no predictor)"
        return self.name + (f" ({', '.join(extras)})" if extras else "")


def _gsg(name: str, target: str, mode: str) -> MethodSpec:
    return MethodSpec(name, target, "guided", gsg_mode=mode, paper=GSG)


OVERRIDABLE = tuple(
    f.name for f in dataclasses.fields(MethodSpec) if f.name not in ("name", "target", "objective", "paper")
)


def register_method(spec: MethodSpec, replace: bool = False) -> MethodSpec:
    """Add ``spec`` to the registry (``--method NAME``); it is validated when built."""
    return METHODS.register(spec.name, spec, replace=replace)


for _m in (
    MethodSpec("simsiam", "stopgrad", "symmetric", paper=SIMSIAM),
    MethodSpec("simsiam-kaug", "stopgrad", "symmetric", views=4, paper=ENSIAM + " (baseline)"),
    MethodSpec("ensiam", "stopgrad", "ensemble", views=4, paper=ENSIAM),
    MethodSpec("byol", "momentum", "symmetric", paper=BYOL + ", heads as in GSG"),
    MethodSpec("byol-ensemble", "momentum", "ensemble", views=4, paper=ENSIAM + " (extension)"),
    _gsg("simsiam-gsg", "stopgrad", "guided"),
    _gsg("simsiam-gsg-random", "stopgrad", "random"),
    _gsg("simsiam-gsg-reverse", "stopgrad", "reverse"),
    _gsg("byol-gsg", "momentum", "guided"),
    _gsg("byol-gsg-random", "momentum", "random"),
    _gsg("byol-gsg-reverse", "momentum", "reverse"),
):
    register_method(_m)


def resolve_method(name: str, **overrides: object) -> MethodSpec:
    """The registered spec ``name`` with ``overrides`` applied (see :meth:`MethodSpec.resolve`);
    an unknown name raises :class:`ConfigError` listing the registered ones."""
    return METHODS.get(name).resolve(**overrides)


def methods_table() -> str:
    """The registry as a plain-text table (``siamkit methods``)."""
    objective = {
        "symmetric": "SimSiam eq.1, all view pairs",
        "ensemble": "EnSiam: D(p_k, sg mean z)",
    }
    rows = [("name", "target", "objective", "views", "predictor", "paper")]
    for _, m in METHODS.items():
        obj = f"GSG {m.gsg_mode}" if m.objective == "guided" else objective[m.objective]
        target = "momentum (EMA)" if m.target == "momentum" else "stop-gradient"
        views = "2 + 2 partner" if m.objective == "guided" else str(m.views)
        rows.append((m.name, target, obj, views, "MLP" if m.predictor else "none", m.paper))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("Every method also runs without a predictor (p = z): --set method.predictor=false.")
    return "\n".join(lines)
