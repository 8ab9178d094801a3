"""How many engine threads one job may use when a sweep runs several jobs at once.

``hydra/launcher=joblib hydra.launcher.n_jobs=N`` runs N jobs side by side in loky worker
processes; each would otherwise take ``engine.threads`` cores and oversubscribe the machine.
Loky already caps every worker's ``NUMBA_NUM_THREADS`` (and the BLAS variables) at
``cpu_count // N``, so asking numba for more than that fails; :func:`effective_threads` stays
within both limits. Under ``submitit`` each job owns its ``cpus_per_task`` (SLURM also pins the
job to them, which ``os.sched_getaffinity`` sees).
"""

from __future__ import annotations

import os

from hydra.core.hydra_config import HydraConfig


def available_cpus() -> int:
    """CPUs this process may run on (respects taskset, cgroups and SLURM's binding)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _launcher():
    """The Hydra launcher config of the running job, or None outside a Hydra job."""
    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().get("launcher")


def concurrent_jobs(cpus: int | None = None) -> int:
    """How many jobs of this sweep share this machine's CPUs (1 unless the joblib launcher)."""
    launcher = _launcher()
    if launcher is None or "joblib" not in str(launcher.get("_target_", "")).lower():
        return 1
    cpus = available_cpus() if cpus is None else cpus
    n = launcher.get("n_jobs")
    if n is None:
        return 1
    n = int(n)
    return max(1, cpus + 1 + n if n < 0 else n)  # joblib: -1 = all CPUs, -2 = all but one


def effective_threads(cfg) -> int:
    """``cfg.engine.threads`` (0 = all) limited to this job's share of the CPUs.

    The share is the available CPUs (or submitit's ``cpus_per_task``) divided by the jobs that
    run at once, and never above numba's ``NUMBA_NUM_THREADS`` (which loky lowers in workers).
    """
    import numba  # read at import from the environment, which main() checks first

    cpus = available_cpus()
    launcher = _launcher()
    if launcher is not None and launcher.get("cpus_per_task"):
        cpus = min(cpus, int(launcher.cpus_per_task))
    share = max(1, cpus // concurrent_jobs(cpus))
    share = min(share, numba.config.NUMBA_NUM_THREADS)
    requested = int(cfg.engine.threads)
    return share if requested == 0 else min(requested, share)
