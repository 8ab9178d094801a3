"""Fashion-MNIST: the study's MNIST protocol on a harder drop-in dataset (not in the study).

``cnnvsdnn report --experiment fashion_mnist`` (``make report-fashion_mnist``) trains the runs
below that are missing and writes the tables; there are no published values to compare with.
"""

DATASET = "fashion_mnist"
TABLES = None  # not one of the study's tables
SEEDS = [0]

# Column -> the `cnnvsdnn train` overrides of its run (the report adds dataset= and seed=).
RUNS = {
    "DNN": ["model=dnn", "engine=numba", "train.steps=2000"],
    "CNN": ["model=cnn", "engine=numba", "train.steps=2000"],
    "Keras": ["model=cnn", "engine=keras", "engine.protocol=study", "engine.epochs=10"],
}

PUBLISHED = None

NOTES = ["Fashion-MNIST was not part of the study: no published values."]
