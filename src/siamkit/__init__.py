"""siamkit: self-supervised visual representation learning with Siamese networks.

SimSiam, BYOL, guided stop-gradient (GSG) and EnSiam as one small framework: the objectives are
pure functions (:mod:`siamkit.losses`), methods are data (:mod:`siamkit.methods`), one generic
training step runs them all (:func:`siamkit.train.step`), evaluations are library calls
(:mod:`siamkit.evaluate`). Importing the package registers every built-in method, backbone,
dataset, recipe and evaluation (:mod:`siamkit.registry`).
"""

from siamkit._version import __version__

# The packages that fill the registries; imported here so that any import of siamkit finds them.
from siamkit import data, evaluate, methods, models  # noqa: F401  isort: skip
from siamkit.pipeline import pretrain

__all__ = ["__version__", "pretrain"]
