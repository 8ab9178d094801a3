"""Published values of the study (Svalheim & Andersen 2019), tables IV-VII, typed in from
reference/report_tables.md. Keys match the .npz files here: <dataset>_<model>."""

CIFAR10_CLASSES = ["Airplane", "Automobile", "Bird", "Cat", "Deer", "Dog", "Frog", "Horse",
                   "Ship", "Truck"]
DIGITS = [str(d) for d in range(10)]

# Test counts per class (the tables' "Amount" column).
COUNT = {
    "cifar10": [1000] * 10,
    "mnist": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}

# Test accuracy (tables IV and VI, "Test" row).
ACCURACY = {
    "cifar10_dnn": 0.4969, "cifar10_cnn": 0.5202, "cifar10_keras_cnn": 0.5460,
    "mnist_dnn": 0.9772, "mnist_cnn": 0.9806, "mnist_keras_cnn": 0.9795,
}

# Table V (CIFAR-10) and table VII (MNIST): per-class F1 and AR, then the weighted averages.
F1 = {
    "cifar10_dnn": [0.5292, 0.6044, 0.3117, 0.3353, 0.4286, 0.4132, 0.5524, 0.5442, 0.6104,
                    0.5597],
    "cifar10_cnn": [0.5963, 0.5995, 0.4035, 0.3354, 0.4795, 0.4275, 0.5753, 0.5476, 0.6472,
                    0.5500],
    "cifar10_keras_cnn": [0.6333, 0.6090, 0.4347, 0.4088, 0.4937, 0.4103, 0.6191, 0.6018,
                          0.6823, 0.5922],
    "mnist_dnn": [0.9878, 0.9908, 0.9788, 0.9746, 0.9774, 0.9700, 0.9752, 0.9741, 0.9737,
                  0.9673],
    "mnist_cnn": [0.9878, 0.9921, 0.9811, 0.9773, 0.9848, 0.9746, 0.9801, 0.9785, 0.9721,
                  0.9757],
    "mnist_keras_cnn": [0.9863, 0.9890, 0.9703, 0.9802, 0.9837, 0.9831, 0.9854, 0.9759, 0.9710,
                        0.9698],
}
AR = {
    "cifar10_dnn": [0.8068, 0.8619, 0.6406, 0.6584, 0.7146, 0.7093, 0.8222, 0.7744, 0.8498,
                    0.8336],
    "cifar10_cnn": [0.8286, 0.8455, 0.6796, 0.6602, 0.7409, 0.7219, 0.8263, 0.7832, 0.8718,
                    0.8021],
    "cifar10_keras_cnn": [0.8448, 0.8762, 0.6930, 0.6863, 0.7573, 0.7156, 0.8581, 0.8122,
                          0.8945, 0.8368],
    "mnist_dnn": [0.9997, 0.9998, 0.9986, 0.9989, 0.9993, 0.9991, 0.9991, 0.9991, 0.9987,
                  0.9974],
    "mnist_cnn": [0.9997, 0.9998, 0.9995, 0.9993, 0.9997, 0.9995, 0.9995, 0.9994, 0.9993,
                  0.9992],
    "mnist_keras_cnn": [0.9997, 0.9998, 0.9992, 0.9997, 0.9997, 0.9992, 0.9990, 0.9990, 0.9989,
                        0.9992],
}
F1_WEIGHTED = {
    "cifar10_dnn": 0.4889, "cifar10_cnn": 0.5162, "cifar10_keras_cnn": 0.5485,
    "mnist_dnn": 0.9772, "mnist_cnn": 0.9806, "mnist_keras_cnn": 0.9795,
}
AR_WEIGHTED = {
    "cifar10_dnn": 0.7672, "cifar10_cnn": 0.7760, "cifar10_keras_cnn": 0.7975,
    "mnist_dnn": 0.9990, "mnist_cnn": 0.9995, "mnist_keras_cnn": 0.9994,
}
