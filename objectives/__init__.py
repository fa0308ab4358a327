"""objectives: what one trial trains and measures (data, models, the training loop).

``train(config, report=None) -> Result`` trains a VGG with batch norm on CIFAR-10 or
Fashion-MNIST from a plain config dict (:mod:`objectives.config`), calling
``report(epoch, metrics)`` after every epoch. It knows nothing of Optuna: ``search``
turns a trial into a config and raises ``optuna.TrialPruned`` from ``report``.
:mod:`objectives.lr_find` is the learning-rate range test behind a study's ``lr: auto``.
"""

from .config import DEFAULT_CONFIG, ConfigError, validate_config
from .data import DataNotFoundError, Splits, load_splits
from .models import VGG, build_model
from .train import Result, train, train_reusing_data

__all__ = [
    "ConfigError",
    "DEFAULT_CONFIG",
    "DataNotFoundError",
    "Result",
    "Splits",
    "VGG",
    "build_model",
    "load_splits",
    "train",
    "train_reusing_data",
    "validate_config",
]
