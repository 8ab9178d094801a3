"""One run: a run directory, the training loop that fills it, its checkpoint and its log.

- ``loop.py``: ``train(cfg, run_dir)``, the one training loop of every engine;
- ``schedule.py``: what a config asks the loop to do (steps, batches, init, optimiser);
- ``batches.py``: the batch order; ``cpus.py``: threads per job in a parallel sweep;
- ``files.py``: the run directory's files, whether it may take a run, reading a finished one;
- ``checkpoint.py``, ``log.py``: the checkpoint and ``log.h5``; ``results.py``: the result files;
- ``predict.py``: a finished run's model on new images (``cnnvsdnn predict``).
"""

from .files import find_runs, read_metrics, run_state
from .loop import train

__all__ = ["find_runs", "read_metrics", "run_state", "train"]
