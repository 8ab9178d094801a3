"""``cnnvsdnn predict RUN_DIR IMAGE...``: a trained run's class and probabilities for new images.

The model is rebuilt from the run's ``params.npz`` (its resolved config, parameters, input
shape and class names) in the numba engine, and each image goes through the preprocessing of
training: decoded by Pillow as grey or RGB (:func:`cnnvsdnn.data.folders.read_image`), resized
to ``dataset.size`` when the run was trained on a folder with one, then scaled by 1/255 inside
the engine. An image the model cannot take as it is (another size, colour for a grey model) is
a one-line error, never silently converted.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import yaml
from rich.table import Table

from .. import engines
from ..data import DATASETS
from ..data.folders import IMAGE_SUFFIXES, parse_size, read_image
from ..engines import AdamSettings
from ..errors import ConfigError, DataError
from ..ui import wide_console
from .files import PARAMS


class TrainedModel:
    """A finished run's model: ``predict(X uint8 (N,H,W,C)) -> probs (N,K)``."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        path = self.run_dir / PARAMS
        if not path.is_file():
            raise ConfigError(f"{self.run_dir} has no {PARAMS}: give the directory of a finished "
                              f"run trained with train.save_params=true")
        try:
            with np.load(path, allow_pickle=False) as z:
                saved = {k: z[k] for k in z.files}
            cfg = yaml.safe_load(str(saved["config"]))
            layers = cfg["model"]["layers"]
            dataset = cfg["dataset"]
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, yaml.YAMLError) as e:
            raise ConfigError(f"{path} is not a readable params file ({type(e).__name__}: "
                              f"{e}); train the run again") from None
        builtin = DATASETS.get(str(dataset.get("name")))
        if "input_shape" in saved:
            self.input_shape = tuple(int(v) for v in saved["input_shape"])
            self.classes = [str(c) for c in saved["classes"]]
        elif builtin is not None:  # written before params.npz recorded them
            self.input_shape, self.classes = tuple(builtin.shape), list(builtin.classes)
        else:
            raise ConfigError(f"{path} does not record the input shape and classes; train the "
                              f"run again with this cnnvsdnn")
        # a folder run resized its images to dataset.size: new images are resized the same way
        self.size = parse_size(dataset.get("size")) if dataset.get("name") == "folder" else None
        net = engines.network(layers, self.input_shape, len(self.classes))
        missing = [k for k in net.param_shapes() if k not in saved]
        if missing:
            raise ConfigError(f"{path} lacks the parameters {', '.join(missing)}; train the run "
                              f"again")
        params = {k: saved[k] for k in net.param_shapes()}
        self.engine = engines.create("numba", net, params, AdamSettings(), batch_size=1,
                                     threads=1)
        self.dataset = str(dataset.get("name"))

    def read(self, path: Path) -> np.ndarray:
        """One image as the model takes it, uint8 (H, W, C); a DataError if it cannot."""
        h, w, c = self.input_shape
        a = read_image(path, self.size)
        if a.shape[:2] != (h, w):
            raise DataError(f"{path} is {a.shape[1]}×{a.shape[0]} pixels, but {self.run_dir} "
                            f"was trained on {w}×{h} images ({self.dataset}); resize it to "
                            f"{w}×{h}")
        if c not in (1, 3):
            raise DataError(f"{self.run_dir} was trained on {c}-channel images; predict reads "
                            f"only grey or RGB image files")
        if a.shape[2] == 3 and c == 1:
            raise DataError(f"{path} is a colour image, but {self.run_dir} was trained on grey "
                            f"images ({self.dataset}); convert it to greyscale first")
        return np.repeat(a, 3, axis=2) if a.shape[2] < c else a  # grey into RGB, as training

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.engine.predict_proba(np.ascontiguousarray(X))


def image_paths(args: list[str]) -> list[Path]:
    """The image files named, a folder standing for every PNG/JPEG under it (sorted)."""
    out: list[Path] = []
    for a in args:
        p = Path(a)
        if p.is_dir():
            found = sorted(Path(top, n) for top, dirs, names in os.walk(p)
                           for n in names if n.lower().endswith(IMAGE_SUFFIXES)
                           and not n.startswith(".") and not Path(top).name.startswith("."))
            if not found:
                raise DataError(f"{p} holds no PNG or JPEG images; give image files or a folder "
                                f"of them")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p} does not exist; give PNG or JPEG image files or folders")
    return out


def predict_images(run_dir: Path, images: list[str]) -> dict:
    """``{"run", "classes", "predictions": [{"image", "class", "index", "probability",
    "probs"}]}`` for the images (files or folders)."""
    model = TrainedModel(run_dir)
    paths = image_paths(images)
    X = np.stack([model.read(p) for p in paths])
    probs = model.predict(X)
    preds = []
    for p, row in zip(paths, probs):
        j = int(row.argmax())
        preds.append({"image": str(p), "class": model.classes[j], "index": j,
                      "probability": float(row[j]), "probs": [float(v) for v in row]})
    return {"run": str(model.run_dir), "classes": model.classes, "predictions": preds}


def print_predictions(result: dict) -> None:
    """A table: image, predicted class and its probability, the runner-up."""
    table = Table(title=f"predictions of {result['run']}")
    for col in ("image", "class", "probability", "next most likely"):
        table.add_column(col, justify="left" if col == "image" else "right")
    classes = result["classes"]
    for p in result["predictions"]:
        order = np.argsort(p["probs"])[::-1]
        nxt = int(order[1])
        table.add_row(p["image"], p["class"], f"{p['probability']:.4f}",
                      f"{classes[nxt]} ({p['probs'][nxt]:.4f})")
    wide_console().print(table)


def add_arguments(parser) -> None:
    """The arguments of ``cnnvsdnn predict``."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished run's directory "
                        "(it holds params.npz)")
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="PNG or JPEG files, or folders of them")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object with every class's probability")


def run(ns) -> int:
    result = predict_images(Path(ns.run_dir), ns.images)
    if ns.json:
        print(json.dumps(result))
    else:
        print_predictions(result)
    return 0
