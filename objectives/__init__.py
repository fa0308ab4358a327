"""objectives: what one trial trains and measures (data, models, the training loop).

``objectives.train.train(config, report=None) -> Result`` trains a VGG with batch norm on
CIFAR-10 or Fashion-MNIST from a plain config dict (:mod:`objectives.config`), calling
``report(epoch, metrics)`` after every epoch. It knows nothing of Optuna: ``search`` turns a
trial into a config and raises ``optuna.TrialPruned`` from ``report``.

Modules: ``errors`` (``ConfigError``, ``DataNotFoundError``), ``registry`` (every
optimizer, LARS mode, schedule and data set, as data) and ``config`` (defaults and
validation) import without torch, so that ``search`` reads them at module level; ``data``,
``models``, ``optim``, ``train`` and ``lr_find`` (the learning-rate range test behind a
study's ``lr: auto``) import torch: they are where training starts.
This package lists the torch-free names; import the rest from their modules
(``from objectives.train import Result, train``).
"""

from .config import DEFAULT_CONFIG, validate_config
from .errors import ConfigError, DataNotFoundError

__all__ = ["ConfigError", "DEFAULT_CONFIG", "DataNotFoundError", "validate_config"]
