"""SVHN: the study's table VIII (accuracy per split) and table IX (test set per class).

``cnnvsdnn report --experiment svhn`` (``make report-svhn``) trains the runs below that are
missing and writes the tables beside the published values, typed in from
``reference/report_tables.md`` (Svalheim & Andersen 2019); this file is their only copy in the
project.

Each column is trained under the corrected protocol and under the study's (``protocol=study``,
what the study's code did: docs/method.md section 8) with the same seeds; the report's "why
they differ" section measures each difference between the two alone (``ATTRIBUTION``).
"""

DATASET = "svhn"
TABLES = {"accuracy": "VIII", "classes": "IX"}
SEEDS = [0, 1, 2, 3, 4]

# Column -> the `cnnvsdnn train` overrides of its run (the report adds dataset= and seed=).
RUNS = {
    "DNN": ["model=dnn", "engine=numba", "train.steps=20000"],
    "CNN": ["model=cnn", "engine=numba", "train.steps=20000"],
    "Keras": ["model=cnn", "engine=keras", "engine.protocol=study", "engine.epochs=20"],
}

# The protocols each column is trained under (conf/protocol/), side by side in the tables.
PROTOCOLS = ["corrected", "study"]
# "Why they differ": each switch of the study's protocol alone, paired over SEEDS -- "add":
# the corrected protocol plus that switch; "remove": the study's protocol without it.
ATTRIBUTION = ["remove"]

PUBLISHED = {
    # table VIII
    "accuracy": {
        "DNN": {"train": 0.7851, "dev": 0.7654, "test": 0.7417},
        "CNN": {"train": 0.9155, "dev": 0.8164, "test": 0.7929},
        "Keras": {"train": 0.9084, "dev": 0.8296, "test": 0.8079},
    },
    # table IX
    "count": [1744, 5099, 4149, 2882, 2523, 2384, 1977, 2019, 1660, 1595],
    "f1": {
        "DNN": [0.7016, 0.8388, 0.7995, 0.6675, 0.8003, 0.6970, 0.6720, 0.7454, 0.6001, 0.6669],
        "CNN": [0.7796, 0.8671, 0.8384, 0.7320, 0.8071, 0.7799, 0.7301, 0.8088, 0.6953, 0.7124],
        "Keras": [0.7940, 0.8779, 0.8680, 0.7555, 0.8249, 0.7927, 0.7507, 0.8314, 0.7104,
                  0.6961],
    },
    "ar": {
        "DNN": [0.9059, 0.9424, 0.9164, 0.8647, 0.9276, 0.8943, 0.9043, 0.9201, 0.8749, 0.8940],
        "CNN": [0.9400, 0.9596, 0.9409, 0.8876, 0.9418, 0.9330, 0.9244, 0.9537, 0.8966, 0.9126],
        "Keras": [0.9522, 0.9633, 0.9577, 0.9060, 0.9479, 0.9339, 0.9371, 0.9598, 0.9189,
                  0.9325],
    },
    "f1_weighted": {"DNN": 0.7420, "CNN": 0.7926, "Keras": 0.8091},
    "ar_weighted": {"DNN": 0.9095, "CNN": 0.9332, "Keras": 0.9442},
}

NOTES = []
