"""Numbers and how they are shown, independent of where they come from: per-split metrics
(``metrics.py``), statistics over seeds (``stats.py``), tables (``tables.py``) and figures
(``figures.py``)."""
