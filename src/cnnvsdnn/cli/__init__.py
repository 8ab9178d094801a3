"""The ``cnnvsdnn`` command: ``train`` goes to Hydra (``train.py``), the other commands to
argparse (``commands.py``).

Every error a user can cause ends here as one line on stderr and an exit code: 2 for bad input
(config, arguments, missing or corrupt data), 1 for a failure during work, 128 + N for signal N.
``HYDRA_FULL_ERROR=1`` shows the traceback instead.
"""

from __future__ import annotations

import gc
import os
import signal
import sys

from .. import __version__
from ..env import check_environment
from ..errors import CnnvsdnnError, Interrupted
from .train import train_command

USAGE = """\
usage: cnnvsdnn COMMAND [ARGS...]

Train and compare the dense (dnn) and convolutional (cnn) classifiers of Svalheim & Andersen
(2019), written from scratch in numba.

commands:
  train [OVERRIDES...]     one training run (-m for a sweep); `cnnvsdnn train --help` lists keys
  data fetch|verify|list|export|show
                           get, check, list, export and look at the datasets
  score PREDICTIONS.npz    metrics (accuracy, per-class F1 and area ratio) of saved predictions
  predict RUN_DIR IMAGE... a trained run's class and probabilities for PNG/JPEG images (or folders)
  summarize MULTIRUN_DIR   mean ± sd over seeds and paired CNN − DNN differences of a sweep
  report RUN_DIR... [--out DIR] | --experiment NAME
                           the study's tables (Markdown, CSV, LaTeX) and figures from runs
  bench [--e2e] [--json PATH]
                           engine speed per step (and whole runs) against PyTorch and JAX
  ablation [DATASET]       the study's section 5.10 ablation over seeds (or any models)

examples:
  cnnvsdnn train                              # MNIST, the study's CNN, 2000 steps
  cnnvsdnn train dataset=fashion_mnist model=dnn seed=1
  cnnvsdnn train -m model=dnn,cnn seed=0,1,2  # a sweep
  cnnvsdnn data fetch mnist fashion_mnist
  cnnvsdnn train dataset=folder dataset.path=my_images   # class subfolders of PNG/JPEG images
  cnnvsdnn predict outputs/runs/<run> photo.png --json
  cnnvsdnn score outputs/runs/<run>/predictions_test.npz --json
  cnnvsdnn report --experiment mnist         # train what is missing, write tables VI-VII

Errors print one line and exit 2 (bad input) or 1 (failure during work);
set HYDRA_FULL_ERROR=1 for a traceback.
"""


def _stop(signum, frame):
    """SIGTERM or SIGHUP outside a training loop (which saves its checkpoint first)."""
    name = signal.Signals(signum).name
    raise Interrupted(f"stopped by {name}; what was written is complete, run the command "
                      f"again to continue", 128 + signum)


def main(argv: list[str] | None = None) -> int:
    """The console script (``argv`` None: the process's own arguments) or a caller's call."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        if argv is None:  # the process ends next: skip its last garbage collection, which
            gc.freeze()  # walks numba's and matplotlib's objects for 0.2-0.8 s and frees
            # nothing that matters (files are closed, temporary ones gone, output flushed)


def _main(argv: list[str]) -> int:
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _stop)
    try:
        if not argv or argv[0] in ("-h", "--help", "help"):
            print(USAGE, end="")
            return 0 if argv else 2
        if argv[0] == "--version":
            print(f"cnnvsdnn {__version__}")
            return 0
        check_environment()
        if argv[0] == "train":
            return train_command(argv[1:])
        # imported here: `train` needs none of their modules (bench, report, ablation:
        # 0.1 s of every run's start-up)
        from .commands import other_command

        return other_command(argv)
    except CnnvsdnnError as ex:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"cnnvsdnn: error: {ex}", file=sys.stderr)
        return ex.exit_code
    except KeyboardInterrupt:
        print("cnnvsdnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output left (`cnnvsdnn data list | head -1`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return 141
    except (OSError, MemoryError) as ex:  # the machine, not the input: a full disk, no memory
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        where = f" ({ex.filename})" if getattr(ex, "filename", None) else ""
        what = "out of memory" if isinstance(ex, MemoryError) else (ex.strerror or str(ex))
        print(f"cnnvsdnn: error: {what}{where}; check the disk, memory and paths, then run the "
              f"command again", file=sys.stderr)
        return 1
