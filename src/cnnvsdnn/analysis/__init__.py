"""Many runs at once: the study's tables (``report.py``) from the runs its experiment files
ask for (``experiments.py``), statistics over seeds (``summarize.py``), the ablation
(``ablation.py``), and the planner that trains what any of them lacks (``plan.py``)."""
