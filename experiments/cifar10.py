"""CIFAR-10: the study's table IV (accuracy per split) and table V (test set per class).

``cnnvsdnn report --experiment cifar10`` (``make report-cifar10``) trains the runs below that
are missing and writes the tables beside the published values, typed in from
``reference/report_tables.md`` (Svalheim & Andersen 2019); this file is their only copy in the
project. Note: the study's CNNs saw scrambled CIFAR-10 images (docs/method.md section 1); ours
do not, except under the study's protocol.

Each column is trained under the corrected protocol and under the study's (``protocol=study``,
what the study's code did: docs/method.md section 8) with the same seeds; the report's "why
they differ" section measures each difference between the two alone (``ATTRIBUTION``).
"""

DATASET = "cifar10"
TABLES = {"accuracy": "IV", "classes": "V"}
SEEDS = [0, 1, 2, 3, 4]

# Column -> the `cnnvsdnn train` overrides of its run (the report adds dataset= and seed=).
RUNS = {
    "DNN": ["model=dnn", "engine=numba", "train.steps=10000"],
    "CNN": ["model=cnn", "engine=numba", "train.steps=10000"],
    "Keras": ["model=cnn", "engine=keras", "engine.protocol=study", "engine.epochs=10"],
}

# The protocols each column is trained under (conf/protocol/), side by side in the tables.
PROTOCOLS = ["corrected", "study"]
# "Why they differ": each switch of the study's protocol alone, paired over SEEDS -- "add":
# the corrected protocol plus that switch; "remove": the study's protocol without it.
ATTRIBUTION = ["remove"]

PUBLISHED = {
    # table IV
    "accuracy": {
        "DNN": {"train": 0.5849, "dev": 0.5050, "test": 0.4969},
        "CNN": {"train": 0.7425, "dev": 0.5278, "test": 0.5202},
        "Keras": {"train": 0.7734, "dev": 0.5522, "test": 0.5460},
    },
    # table V (classes airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck)
    "count": [1000] * 10,
    "f1": {
        "DNN": [0.5292, 0.6044, 0.3117, 0.3353, 0.4286, 0.4132, 0.5524, 0.5442, 0.6104, 0.5597],
        "CNN": [0.5963, 0.5995, 0.4035, 0.3354, 0.4795, 0.4275, 0.5753, 0.5476, 0.6472, 0.5500],
        "Keras": [0.6333, 0.6090, 0.4347, 0.4088, 0.4937, 0.4103, 0.6191, 0.6018, 0.6823,
                  0.5922],
    },
    "ar": {
        "DNN": [0.8068, 0.8619, 0.6406, 0.6584, 0.7146, 0.7093, 0.8222, 0.7744, 0.8498, 0.8336],
        "CNN": [0.8286, 0.8455, 0.6796, 0.6602, 0.7409, 0.7219, 0.8263, 0.7832, 0.8718, 0.8021],
        "Keras": [0.8448, 0.8762, 0.6930, 0.6863, 0.7573, 0.7156, 0.8581, 0.8122, 0.8945,
                  0.8368],
    },
    "f1_weighted": {"DNN": 0.4889, "CNN": 0.5162, "Keras": 0.5485},
    "ar_weighted": {"DNN": 0.7672, "CNN": 0.7760, "Keras": 0.7975},
}

NOTES = [
    "The study decoded CIFAR-10 rows as (32,32,3), scrambling every image its CNNs saw; the "
    "corrected protocol decodes them channel-planar, the study's protocol as the study did "
    "(data.cifar10_decode=study): see 'Each difference alone'.",
]
