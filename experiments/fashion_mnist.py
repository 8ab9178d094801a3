"""Fashion-MNIST: the study's MNIST protocol on a harder drop-in dataset (not in the study).

``cnnvsdnn report --experiment fashion_mnist`` (``make report-fashion_mnist``) trains the runs
below that are missing and writes the tables; there are no published values to compare with.

Each column is trained under the corrected protocol and under the study's (``protocol=study``,
what the study's code did: docs/method.md section 8) with the same seeds; the report's "why
they differ" section measures each difference between the two alone (``ATTRIBUTION``).
"""

DATASET = "fashion_mnist"
TABLES = None  # not one of the study's tables
SEEDS = [0, 1, 2, 3, 4]

# Column -> the `cnnvsdnn train` overrides of its run (the report adds dataset= and seed=).
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

PUBLISHED = None

NOTES = ["Fashion-MNIST was not part of the study: no published values."]
