"""cnnvsdnn: dense vs. convolutional image classifiers from scratch, fast and reproducible."""

__version__ = "0.1.0"
