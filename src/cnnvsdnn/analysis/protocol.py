"""The study's protocol beside the corrected one: the switches between them, what protocol a run
followed (its variant), the runs an experiment needs to measure each switch alone, and the
report's "why they differ" section.

A *switch* is a config key that ``conf/protocol/study.yaml`` sets to another value than the
corrected protocol and that the column's runs use (``data.cifar10_decode`` is no switch on
MNIST, Adam's ε sign none under Keras's own ``fit``). A run's *variant* names the switches it
has at the study's value: ``corrected`` (none), ``study`` (all), ``corrected+eps_sign`` (that
one alone), ``study-dev_split`` (all but that one). Variants are canonical: with a single
switch, "corrected + it" is the study's protocol, and no run is trained twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml
from omegaconf import OmegaConf

from ..config import (
    NOT_A_RESULT,
    SAME_RESULT,
    compose_config,
    flat_config,
    unused_keys,
    with_defaults,
)
from ..evaluation.stats import Stats, describe, fmt_p, paired
from ..evaluation.tables import NA, markdown_table
from ..run.files import CONFIG, LOG
from ..run.log import read_log

CORRECTED, STUDY = "corrected", "study"
SPLITS = (("train", "Training"), ("dev", "Development"), ("test", "Test"))
SPREAD = 2.0  # a published value within this many seed sds of our mean is "reproduced"


@dataclass(frozen=True)
class Switch:
    """One difference between the protocols: a key, its corrected and its study value."""

    key: str
    corrected: object
    study: object

    @property
    def short(self) -> str:
        return self.key.rsplit(".", 1)[-1]

    def describe(self) -> str:
        return f"`{self.key}`: {self.corrected} → {self.study}"


def _plain_flat(container: dict) -> dict:
    return with_defaults(flat_config(container))


def _own(overrides) -> list[str]:
    return [o for o in overrides if not o.startswith(("protocol=", "hydra"))]


@lru_cache(maxsize=64)
def _switches(overrides: tuple[str, ...]) -> tuple[Switch, ...]:
    def flat(protocol):
        cfg = compose_config([*overrides, f"protocol={protocol}"])
        return _plain_flat(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))

    a, b = flat(CORRECTED), flat(STUDY)
    skip = set(NOT_A_RESULT) | set(SAME_RESULT) | (unused_keys(a) & unused_keys(b))
    return tuple(Switch(k, a[k], b.get(k)) for k in a if k not in skip and a[k] != b.get(k))


def switches(overrides: list[str]) -> list[Switch]:
    """The switches of runs with these ``cnnvsdnn train`` overrides (any protocol= dropped)."""
    return list(_switches(tuple(_own(overrides))))


def run_config(run_dir: Path) -> dict | None:
    """A run's resolved config, flat, with the schema's defaults for keys it predates."""
    try:
        return _plain_flat(yaml.safe_load((Path(run_dir) / CONFIG).read_text()) or {})
    except (OSError, yaml.YAMLError):
        return None


def switches_of_run(flat: dict) -> list[Switch]:
    """The switches that apply to a run (from its dataset, engine and Keras protocol)."""
    over = [f"dataset={flat.get('dataset.name', 'mnist')}",
            f"engine={flat.get('engine.name', 'numba')}"]
    if flat.get("engine.name") == "keras":
        over.append(f"engine.protocol={flat.get('engine.protocol', 'study')}")
    return switches(over)


# ------------------------------------------------------------------------------ variants
def _short(key: str, sw: list[Switch]) -> str:
    s = key.rsplit(".", 1)[-1]
    return s if sum(x.short == s for x in sw) == 1 else key


def variant_name(study_keys, sw: list[Switch]) -> str:
    """The canonical name of the variant with ``study_keys`` at the study's value."""
    on = [s.key for s in sw if s.key in set(study_keys)]
    off = [s.key for s in sw if s.key not in set(study_keys)]
    if not on:
        return CORRECTED
    if not off:
        return STUDY
    if len(off) == 1 and len(on) > 1:
        return f"{STUDY}-{_short(off[0], sw)}"
    return CORRECTED + "".join(f"+{_short(k, sw)}" for k in on)


def variant_of(flat: dict, sw: list[Switch]) -> str:
    """The variant of a run (its flat config): which switches it has at the study's value."""
    return variant_name([s.key for s in sw if str(flat.get(s.key)) != str(s.corrected)], sw)


def variant_overrides(variant: str, sw: list[Switch]) -> list[str]:
    """The ``cnnvsdnn train`` overrides of a variant (``protocol=study`` and the keys set back,
    or the corrected protocol and the keys set to the study's values)."""
    if variant == CORRECTED:
        return []
    if variant == STUDY:
        return [f"protocol={STUDY}"]
    by_short = {_short(s.key, sw): s for s in sw}
    if variant.startswith(f"{STUDY}-"):
        s = by_short[variant[len(STUDY) + 1:]]
        return [f"protocol={STUDY}", f"{s.key}={s.corrected}"]
    return [f"{by_short[n].key}={by_short[n].study}" for n in variant.split("+")[1:]]


def add_variant(s: Switch, sw: list[Switch]) -> str:
    return variant_name([s.key], sw)


def remove_variant(s: Switch, sw: list[Switch]) -> str:
    return variant_name([x.key for x in sw if x.key != s.key], sw)


def planned_variants(protocols: list[str], designs: list[str], sw: list[Switch]) -> list[str]:
    """The variants an experiment column trains: its protocols, then each switch alone."""
    out = [p for p in protocols if p in (CORRECTED, STUDY)]
    for s in sw:
        if "add" in designs:
            out.append(add_variant(s, sw))
        if "remove" in designs:
            out.append(remove_variant(s, sw))
    return list(dict.fromkeys(out))


def display(variant: str) -> str:
    return {CORRECTED: "corrected", STUDY: "study protocol"}.get(
        variant, variant.replace("-", " − ").replace("+", " + "))


# ------------------------------------------------------------------------------ numbers
def fit_reported_train_accuracy(run_dir: Path, metrics: dict) -> float | None:
    """The training accuracy Keras's ``fit`` reports for its last epoch -- the running mean of
    the batch accuracies over that epoch, weighted by batch size -- for a run of Keras's own fit
    (``engine=keras engine.protocol=study``); None for other runs. The study's Keras "Training"
    values can only be this (its code computes no other)."""
    if metrics.get("engine") != "keras" or metrics.get("protocol") != "study":
        return None
    try:
        acc = read_log(Path(run_dir) / LOG)["train"]["accuracy"]
        n, b = int(metrics["splits"]["train"]["n"]), int(metrics["batch_size"])
    except Exception:  # noqa: BLE001 -- a damaged log or old metrics: no value, not an error
        return None
    per_epoch = math.ceil(n / b)
    if acc.size < per_epoch:
        return None
    sizes = np.full(per_epoch, float(b))
    sizes[-1] = n - (per_epoch - 1) * b
    return float(np.dot(acc[-per_epoch:], sizes) / n)


def _delta(a: dict[int, float], b: dict[int, float]) -> str:
    """Paired b − a over the seeds both have: mean ± sd (paired t-test p)."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return NA
    s, _, p, _ = paired([a[i] for i in seeds], [b[i] for i in seeds])
    if s.n < 2:
        return f"{s.mean:+.4f} (1 seed)"
    return f"{s.mean:+.4f} ± {s.sd:.4f} (p {fmt_p(p)})"


def _pm(s: Stats | None) -> str:
    return NA if s is None else s.pm()


@dataclass
class Column:
    """One published column's runs: variant -> seed -> metrics (and run dirs)."""

    label: str
    switches: list[Switch]
    runs: dict[str, dict[int, tuple[Path, dict]]]

    def values(self, variant: str, split: str) -> dict[int, float]:
        return {seed: m["splits"][split]["accuracy"]
                for seed, (_, m) in self.runs.get(variant, {}).items()}

    def fit_values(self, variant: str) -> dict[int, float]:
        out = {}
        for seed, (d, m) in self.runs.get(variant, {}).items():
            v = fit_reported_train_accuracy(d, m)
            if v is not None:
                out[seed] = v
        return out


def verdict_rows(columns: list[Column], published, explained: dict) -> list[list[str]]:
    """Each published accuracy against our study-protocol runs (and the corrected ones)."""
    head = ["column", "split", "published", "study protocol", "z", "seeds ≥ published",
            "corrected", "verdict"]
    rows = [head]
    for c in columns:
        pub = (published or {}).get("accuracy", {}).get(c.label)
        if not pub:
            continue
        for split, name in SPLITS:
            if split not in pub:
                continue
            why = explained.get(c.label, {}).get(split)
            rows.append([c.label, name, *_verdict(pub[split], c.values(STUDY, split),
                                                  c.values(CORRECTED, split), why)])
            fit = c.fit_values(STUDY) if split == "train" else {}
            if fit:  # Keras's fit: the value it reports, the only one the study's code had
                rows.append([c.label, f"{name} (as fit reports it)",
                             *_verdict(pub[split], fit, c.fit_values(CORRECTED), why)])
    return rows


def _verdict(pub: float, vals: dict[int, float], corrected: dict[int, float],
             why: str | None) -> list[str]:
    s = describe(list(vals.values())) if vals else None
    c = describe(list(corrected.values())) if corrected else None
    if s is None:
        return [f"{pub:.4f}", NA, NA, NA, _pm(c), why or "no study-protocol runs"]
    z = (pub - s.mean) / s.sd if s.n > 1 and s.sd > 0 else math.nan
    above = sum(v >= pub for v in vals.values())
    if why:
        verdict = why
    elif s.n < 2:
        verdict = "one seed: no spread to compare with"
    elif math.isnan(z):  # every seed gave the same value
        verdict = "reproduced exactly" if round(s.mean, 4) == round(pub, 4) else \
            f"not reproduced: {pub - s.mean:+.4f}, and the seeds do not vary"
    elif abs(z) <= SPREAD:
        verdict = f"reproduced: within {SPREAD:g} sd of the seeds"
    else:
        verdict = (f"not reproduced: {pub - s.mean:+.4f} beyond the seeds' spread; not "
                   f"explained by the protocol")
    return [f"{pub:.4f}", s.pm(), "n/a" if math.isnan(z) else f"{z:+.1f}",
            f"{above}/{s.n}", _pm(c), verdict]


def attribution_rows(columns: list[Column], designs: list[str]) -> list[list[str]]:
    """Each switch's effect alone on the three splits' accuracy, paired over seeds, by the
    ``designs`` asked for (their rows show n/a where runs are missing) and by any other design
    that has runs."""
    asked = set(designs)
    designs = ["add", "remove"]
    head = ["column", "switch", "design", *(name for _, name in SPLITS)]
    rows = [head]
    for c in columns:
        if CORRECTED not in c.runs or STUDY not in c.runs:
            continue
        rows.append([c.label, "all (the study's protocol)", "study − corrected",
                     *(_delta(c.values(CORRECTED, s), c.values(STUDY, s)) for s, _ in SPLITS)])
        for sw in c.switches:
            pairs = [("corrected + switch − corrected", CORRECTED, add_variant(sw, c.switches)),
                     ("study − (study without switch)", remove_variant(sw, c.switches), STUDY)]
            for (design, a, b), kind in zip(pairs, designs, strict=True):
                cells = [_delta(c.values(a, s), c.values(b, s)) for s, _ in SPLITS]
                if kind in asked or any(x != NA for x in cells):
                    rows.append([c.label, sw.describe(), design, *cells])
    return rows


def why_section(columns: list[Column], published, explained: dict, designs: list[str]) -> str:
    """The report's "why they differ" section (Markdown), computed from the runs."""
    parts = ["## Why they differ\n",
             "Every run of a column under the study's protocol (`protocol=study`: what the "
             "study's code did, docs/method.md section 8) and under the corrected one, with the "
             "same seeds. A published value is *reproduced* when it lies within "
             f"{SPREAD:g} sample sd of our study-protocol seeds (z = (published − mean)/sd).\n"]
    verdicts = verdict_rows(columns, published, explained)
    if len(verdicts) > 1:
        parts += ["### The published values against the study's protocol\n",
                  markdown_table(verdicts)]
    attr = attribution_rows(columns, designs)
    if len(attr) > 1:
        parts += ["### Each difference alone\n",
                  "Accuracy differences, paired by seed: mean ± sd over seeds (paired t-test "
                  "p). *corrected + switch − corrected*: the corrected protocol with that one "
                  "key set as the study's code had it; *study − (study without switch)*: the "
                  "study's protocol against itself with that key corrected. A column with a "
                  "single switch has no other runs: its effect is the whole difference.\n",
                  markdown_table(attr)]
    return "\n".join(parts) + "\n"
