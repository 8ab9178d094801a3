"""Image folders: class subfolders of PNG/JPEG images, the layout torchvision's ``ImageFolder``
and Keras's ``image_dataset_from_directory`` read, decoded with Pillow.

::

    DIR/<class>/*.png|jpg|jpeg                      a test split is drawn (dataset.test_fraction)
    DIR/train/<class>/...  +  DIR/test/<class>/...  the given split

- Class names are the subfolder names, sorted (so class ``i`` is the i-th name, as in
  ``ImageFolder``); images may sit in nested folders inside a class; hidden files and folders
  and files of other types are skipped.
- Images are taken in the order of their file names across classes (then their paths), so a
  folder written by :func:`write_folder` (``cnnvsdnn data export``) keeps the dataset's order.
- Grey images (Pillow modes 1, L, LA; a palette whose colours are all grey) give one channel,
  colour ones three (alpha dropped); a folder with any colour image is RGB throughout, its grey
  images repeated into three channels. 16-bit and float images are refused.
- Images of one size are kept as they are; ``size`` resizes every image to (H, W) with
  Pillow's bilinear filter (``Image.resize(..., Resampling.BILINEAR)``, which averages over
  the whole footprint when shrinking), the aspect ratio not kept.

Every problem is a one-line :class:`DataError` naming the folder or file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
RESAMPLE = "bilinear"  # Pillow's Resampling.BILINEAR; the README and docs/method.md say so
_GREY = {"1", "L", "LA", "La"}
_COLOUR = {"RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}


class ImageFile(NamedTuple):  # a NamedTuple: 70000 frozen dataclasses take a second
    """One image of a folder: its split (train, test, or all when no test/ exists), class
    index, path relative to the folder, and the size and mtime that stamp it cheaply."""

    split: str
    label: int
    rel: str
    nbytes: int
    mtime_ns: int


@dataclass(frozen=True)
class Listing:
    """What a folder holds, in the order its images are taken."""

    root: Path
    classes: tuple[str, ...]
    files: tuple[ImageFile, ...]
    has_test: bool

    def stamps(self) -> list:
        return [[f.split, f.label, f.rel, f.nbytes, f.mtime_ns] for f in self.files]


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _class_dirs(d: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(d) if e.is_dir() and _visible(e.name))
    except OSError as e:
        raise DataError(f"cannot read the folder {d} ({e.strerror}); check its permissions") \
            from None


def _images(d: Path, root: Path) -> tuple[list[tuple[str, str, os.stat_result]], list[str]]:
    """(name, path relative to root, stat) of every image under ``d``; suffixes of the others."""
    found, others = [], []
    # os.scandir and plain strings: pathlib costs ~10x more per file on 70000 images
    stack = [(str(d), d.relative_to(root).as_posix())]
    while stack:
        top, rel = stack.pop()
        try:
            entries = sorted(os.scandir(top), key=lambda e: e.name, reverse=True)
        except OSError as e:
            raise DataError(f"cannot read the folder {top} ({e.strerror}); check its "
                            f"permissions") from None
        for e in entries:
            if not _visible(e.name):
                continue
            if e.is_dir():
                stack.append((e.path, f"{rel}/{e.name}"))
            elif e.name.lower().endswith(IMAGE_SUFFIXES):
                found.append((e.name, f"{rel}/{e.name}", e.stat()))
            else:
                others.append(os.path.splitext(e.name)[1].lower() or e.name)
    return found, others


def scan(root: Path) -> Listing:
    """The folder's classes and images (stat only, nothing decoded); a DataError for a folder
    without classes, with a single class, or with an empty class."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset.path={root} is not a folder; give a folder of class "
                        f"subfolders of PNG or JPEG images")
    has_test = (root / "test").is_dir()
    train_dir = root / "train" if has_test else root
    if has_test and not train_dir.is_dir():
        raise DataError(f"{root} has a test/ folder but no train/; put the training images in "
                        f"{root}/train/<class>/ (or remove test/ to draw a test split)")
    classes = _class_dirs(train_dir)
    if not classes:
        raise DataError(f"{train_dir} has no class subfolders; put the images of each class in "
                        f"{train_dir}/<class name>/")
    if len(classes) == 1:
        raise DataError(f"{train_dir} has a single class folder ({classes[0]}); a classifier "
                        f"needs at least two classes")
    splits = [("train" if has_test else "all", train_dir)]
    if has_test:
        extra = [c for c in _class_dirs(root / "test") if c not in classes]
        if extra:
            raise DataError(f"{root}/test/{extra[0]} is not a class of {train_dir} "
                            f"({', '.join(classes)}); every test class needs training images")
        splits.append(("test", root / "test"))
    files: list[ImageFile] = []
    for split, d in splits:
        entries = []
        for label, cls in enumerate(classes):
            if not (d / cls).is_dir():
                continue  # a test split may lack a class
            found, others = _images(d / cls, root)
            if not found and split != "test":
                what = f" (only {', '.join(sorted(set(others))[:4])} files)" if others else ""
                raise DataError(f"class folder {d / cls} holds no PNG or JPEG images{what}; add "
                                f"some or remove the folder")
            entries += [(name, rel, label, st) for name, rel, st in found]
        entries.sort(key=lambda e: (e[0], e[1]))  # file name order across classes
        files += [ImageFile(split, label, rel, st.st_size, st.st_mtime_ns)
                  for _, rel, label, st in entries]
    if has_test and not any(f.split == "test" for f in files):
        raise DataError(f"{root}/test/ holds no PNG or JPEG images in class folders; add "
                        f"them as test/<class>/ or remove test/ to draw a test split")
    return Listing(root, tuple(classes), tuple(files), has_test)


# ------------------------------------------------------------------------------ one image
def parse_size(value) -> tuple[int, int] | None:
    """``dataset.size``: null, N (N×N) or [H, W] -> (H, W) or None; a ConfigError otherwise."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        hw = (value, value)
    else:
        try:
            hw = tuple(value)
        except TypeError:
            hw = ()
        if len(hw) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in hw):
            raise ConfigError(f"dataset.size={value!r} must be one number N (N×N pixels) or "
                              f"[H, W], e.g. dataset.size=32")
    if min(hw) < 1 or max(hw) > 4096:
        raise ConfigError(f"dataset.size={value!r} must be between 1 and 4096 pixels")
    return int(hw[0]), int(hw[1])


def read_image(path: Path, size: tuple[int, int] | None = None, where: str | None = None
               ) -> np.ndarray:
    """One image as uint8 (H, W, 1) if grey, (H, W, 3) if colour; resized to ``size`` (H, W)
    if given and different. A one-line DataError if it cannot be decoded."""
    from PIL import Image  # a heavy import, only where images are read

    where = where or str(path)
    try:
        with Image.open(path) as im:
            im.load()  # decode now: a truncated or damaged file fails here
            mode = im.mode
            if mode in _GREY:
                im = im.convert("L")
            elif mode == "P":
                im = im.convert("RGB")
                rgb = np.asarray(im)
                if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
                    im = im.convert("L")
            elif mode in _COLOUR:
                im = im.convert("RGB")
            else:  # I;16, I, F: more than 8 bits a pixel
                raise DataError(f"{where} has {mode} pixels (16-bit or float); save it as an "
                                f"8-bit grey or RGB PNG/JPEG")
            if size is not None and (im.height, im.width) != size:
                im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{where} does not exist; give the path of a PNG or JPEG image") \
            from None
    except MemoryError:
        raise
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, ... per format
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{where} is not a readable PNG or JPEG image ({why}); replace or "
                        f"remove it") from None
    return a[..., None] if a.ndim == 2 else a


def decode(listing: Listing, size: tuple[int, int] | None,
           progress: Iterator | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every image of the listing: split -> (X uint8 (N,H,W,C), y uint8 (uint16 beyond 255
    classes) (N,)).

    ``progress`` wraps the file iterator (a progress bar). A DataError for an unreadable image
    or, without ``size``, images of different sizes."""
    files = listing.files
    X = None  # allocated at the first image; widened to 3 channels at the first colour one
    first = ""
    it = progress(files) if progress else files
    for i, f in enumerate(it):
        a = read_image(listing.root / f.rel, size)
        if X is None:
            X, first = np.empty((len(files), *a.shape), np.uint8), f.rel
        elif a.shape[:2] != X.shape[1:3]:
            (h0, w0), (h, w) = X.shape[1:3], a.shape[:2]
            raise DataError(f"{listing.root}: images of different sizes ({w0}×{h0} pixels in "
                            f"{first}, {w}×{h} in {f.rel}); resize them all with "
                            f"dataset.size=N (N×N) or dataset.size=[H,W]")
        if a.shape[2] > X.shape[3]:  # a colour image after grey ones: the folder is RGB
            X = np.repeat(X, 3, axis=3)
        X[i] = a  # a grey image in a colour folder repeats into the three channels
    labels = np.array([f.label for f in files], np.uint16 if len(listing.classes) > 255
                      else np.uint8)
    out = {}
    for split in dict.fromkeys(f.split for f in files):
        mask = np.array([f.split == split for f in files])
        out[split] = (X[mask], labels[mask])
    return out


# ------------------------------------------------------------------------------ writing
def folder_names(classes: list[str]) -> list[str]:
    """Folder names for class names: path separators replaced; prefixed by the zero-padded
    class index when the names would not sort in class order (so reading the folder back
    gives every class its index)."""
    safe = [re.sub(r"[/\\\x00]", "-", c).strip().lstrip(".") or str(i)
            for i, c in enumerate(classes)]
    if safe != sorted(safe) or len(set(safe)) != len(safe):
        w = len(str(len(safe) - 1))
        safe = [f"{i:0{w}d}_{s}" for i, s in enumerate(safe)]
    return safe


def write_folder(X: np.ndarray, y: np.ndarray, classes: list[str], out: Path,
                 progress: Iterator | None = None) -> Path:
    """Images uint8 (N,H,W,C), C 1 or 3, as ``out/<class>/<index>.png`` (index: the image's
    position, zero-padded, so reading the folder back gives the same order). Written into a
    temporary folder renamed to ``out`` at the end: an interrupted export leaves no half folder.
    """
    from PIL import Image

    out = Path(out)
    if X.ndim != 4 or X.shape[3] not in (1, 3):
        raise DataError(f"cannot write {X.shape[3:]}-channel images as PNG; only grey (1) or "
                        f"RGB (3)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} already exists and is not an empty folder; choose a new "
                          f"folder (nothing was overwritten)")
    names = folder_names(list(classes))
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    w = max(5, len(str(len(X) - 1)))
    try:
        for name in names:
            (tmp / name).mkdir(parents=True, exist_ok=True)
        idx = range(len(X))
        for i in progress(idx) if progress else idx:
            img = X[i, ..., 0] if X.shape[3] == 1 else X[i]
            Image.fromarray(img).save(tmp / names[int(y[i])] / f"{i:0{w}d}.png",
                                      compress_level=1)
        if out.exists():
            out.rmdir()  # empty (checked above)
        tmp.rename(out)
    except OSError as e:
        raise ConfigError(f"cannot write {out} ({e.strerror}); choose another folder "
                          f"(partial files are in {tmp})") from None
    return out
