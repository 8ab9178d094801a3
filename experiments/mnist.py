"""MNIST: the study's table VI (accuracy per split) and table VII (test set per class).

``cnnvsdnn report --experiment mnist`` (``make report-mnist``) trains the runs below that are
missing and writes the tables beside the published values. The published values are typed in
from ``reference/report_tables.md`` (Svalheim & Andersen 2019); this file is their only copy
in the project (``tests/data/published.py`` reads them from here).

Each column is trained under the corrected protocol and under the study's (``protocol=study``,
what the study's code did: docs/method.md section 8) with the same seeds; the report's "why
they differ" section measures each difference between the two alone (``ATTRIBUTION``).
"""

DATASET = "mnist"
TABLES = {"accuracy": "VI", "classes": "VII"}
SEEDS = [0, 1, 2, 3, 4]

# Column -> the `cnnvsdnn train` overrides of its run (the report adds dataset= and seed=).
# The study's steps (docs/method.md section 5); the Keras column is the study's Keras protocol
# (section 7).
RUNS = {
    "DNN": ["model=dnn", "engine=numba", "train.steps=2000"],
    "CNN": ["model=cnn", "engine=numba", "train.steps=2000"],
    "Keras": ["model=cnn", "engine=keras", "engine.protocol=study", "engine.epochs=10"],
}

# The protocols each column is trained under (conf/protocol/), side by side in the tables.
PROTOCOLS = ["corrected", "study"]
# "Why they differ": each switch of the study's protocol alone, paired over SEEDS -- "add":
# the corrected protocol plus that switch; "remove": the study's protocol without it.
ATTRIBUTION = ["add", "remove"]

PUBLISHED = {
    # table VI: accuracy on the training, development and test splits
    "accuracy": {
        "DNN": {"train": 0.9905, "dev": 0.9766, "test": 0.9772},
        "CNN": {"train": 0.9969, "dev": 0.9822, "test": 0.9806},
        "Keras": {"train": 0.9961, "dev": 0.0832, "test": 0.9795},
    },
    # table VII: test count, F1 and area ratio per class, then the weighted averages
    "count": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    "f1": {
        "DNN": [0.9878, 0.9908, 0.9788, 0.9746, 0.9774, 0.9700, 0.9752, 0.9741, 0.9737, 0.9673],
        "CNN": [0.9878, 0.9921, 0.9811, 0.9773, 0.9848, 0.9746, 0.9801, 0.9785, 0.9721, 0.9757],
        "Keras": [0.9863, 0.9890, 0.9703, 0.9802, 0.9837, 0.9831, 0.9854, 0.9759, 0.9710,
                  0.9698],
    },
    "ar": {
        "DNN": [0.9997, 0.9998, 0.9986, 0.9989, 0.9993, 0.9991, 0.9991, 0.9991, 0.9987, 0.9974],
        "CNN": [0.9997, 0.9998, 0.9995, 0.9993, 0.9997, 0.9995, 0.9995, 0.9994, 0.9993, 0.9992],
        "Keras": [0.9997, 0.9998, 0.9992, 0.9997, 0.9997, 0.9992, 0.9990, 0.9990, 0.9989,
                  0.9992],
    },
    "f1_weighted": {"DNN": 0.9772, "CNN": 0.9806, "Keras": 0.9795},
    "ar_weighted": {"DNN": 0.9990, "CNN": 0.9995, "Keras": 0.9994},
}

# Published values no run can reproduce, and why (column -> split -> reason).
EXPLAINED = {"Keras": {"dev": "a misprint in the report: its figure shows about 0.983"}}

NOTES = [
    "The study's Keras development accuracy 0.0832 (table VI) is a misprint in the report; "
    "its figure shows about 0.983.",
]
