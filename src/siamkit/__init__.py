"""siamkit: self-supervised visual representation learning with Siamese networks.

SimSiam, BYOL, guided stop-gradient (GSG) and EnSiam as one small framework: the objectives are
pure functions (:mod:`siamkit.losses`), methods are data (:mod:`siamkit.methods`), one generic
training step runs them all (:func:`siamkit.train.step`).
"""

__version__ = "0.1.0"
