"""cnnvsdnn's sweeper (``hydra/sweeper=cnnvsdnn``, the default in conf/config.yaml).

Hydra instantiates plugins only from the ``hydra_plugins`` package, so the class is named here;
what it does is in ``cnnvsdnn/cli/sweep.py``.
"""

from cnnvsdnn.cli.sweep import Sweeper


class CnnvsdnnSweeper(Sweeper):
    """Hydra's basic sweeper that runs every point to its end: see ``cnnvsdnn.cli.sweep``."""
