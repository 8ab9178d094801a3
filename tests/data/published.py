"""The study's published values of tables IV-VII, read from their one copy in
``experiments/<dataset>.py`` and keyed like the .npz files here: ``<dataset>_<model>`` with
model dnn, cnn or keras_cnn."""

from cnnvsdnn.analysis.experiments import load_experiment
from cnnvsdnn.data import DATASETS

CIFAR10_CLASSES = [c.capitalize() for c in DATASETS["cifar10"].classes]  # as the study prints
_MODELS = {"DNN": "dnn", "CNN": "cnn", "Keras": "keras_cnn"}

COUNT: dict[str, list[int]] = {}  # test counts per class (the tables' "Amount")
ACCURACY: dict[str, float] = {}  # test accuracy (tables IV and VI, "Test" row)
F1: dict[str, list[float]] = {}  # tables V and VII, per class
AR: dict[str, list[float]] = {}
F1_WEIGHTED: dict[str, float] = {}
AR_WEIGHTED: dict[str, float] = {}

for _dataset in ("cifar10", "mnist"):
    _pub = load_experiment(_dataset).published
    COUNT[_dataset] = _pub["count"]
    for _column, _model in _MODELS.items():
        _key = f"{_dataset}_{_model}"
        ACCURACY[_key] = _pub["accuracy"][_column]["test"]
        F1[_key], AR[_key] = _pub["f1"][_column], _pub["ar"][_column]
        F1_WEIGHTED[_key] = _pub["f1_weighted"][_column]
        AR_WEIGHTED[_key] = _pub["ar_weighted"][_column]
