"""The ``cnnvsdnn`` command: ``train`` goes to Hydra, the other commands to argparse.

Every error a user can cause ends here as one line on stderr and an exit code (SPEC section 9):
2 for bad input (config, arguments, missing or corrupt data), 1 for a failure during work.
``HYDRA_FULL_ERROR=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import sys
from pathlib import Path

from cnnvsdnn import __version__
from cnnvsdnn.errors import CnnvsdnnError, ConfigError

USAGE = """\
usage: cnnvsdnn COMMAND [ARGS...]

Train and compare the dense (dnn) and convolutional (cnn) classifiers of Svalheim & Andersen
(2019), written from scratch in numba.

commands:
  train [OVERRIDES...]     one training run (-m for a sweep); `cnnvsdnn train --help` lists keys
  data fetch|verify|list|export|show
                           get, check, list, export and look at the datasets
  score PREDICTIONS.npz    metrics (accuracy, per-class F1 and area ratio) of saved predictions
  summarize MULTIRUN_DIR   mean ± sd over seeds and paired CNN − DNN differences of a sweep
  report RUN_DIR... [--out DIR] | --experiment NAME
                           the study's tables (Markdown, CSV, LaTeX) and figures from runs
  bench [--json PATH]      engine speed per training step against PyTorch and plain NumPy

examples:
  cnnvsdnn train                              # MNIST, the study's CNN, 2000 steps
  cnnvsdnn train dataset=fashion_mnist model=dnn seed=1
  cnnvsdnn train -m model=dnn,cnn seed=0,1,2  # a sweep
  cnnvsdnn data fetch mnist fashion_mnist
  cnnvsdnn score outputs/runs/<run>/predictions_test.npz --json
  cnnvsdnn report --experiment mnist         # train what is missing, write tables VI-VII

Errors print one line and exit 2 (bad input) or 1 (failure during work);
set HYDRA_FULL_ERROR=1 for a traceback.
"""

# Hydra's own flags that take a value (the value is not an override).
_HYDRA_VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
                      "--experimental-rerun", "--cfg", "-c", "--package", "-p", "--info", "-i"}
# Flags after which Hydra only prints something: no run, so nothing to check first.
_HYDRA_INFO_FLAGS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i",
                     "--version", "--shell-completion", "-sc", "--resolve"}
_MAX_PRECHECK = 1000  # sweep combinations checked before a multirun starts
# Hydra's modes, of which a command may have one.
_HYDRA_MODES = {"-m": "--multirun", "--multirun": "--multirun", "--cfg": "--cfg", "-c": "--cfg",
                "--info": "--info", "-i": "--info", "--shell-completion": "--shell-completion",
                "-sc": "--shell-completion"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] in ("-h", "--help", "help"):
            print(USAGE, end="")
            return 0 if argv else 2
        if argv[0] == "--version":
            print(f"cnnvsdnn {__version__}")
            return 0
        if argv[0] == "train":
            return _train(argv[1:])
        return _other(argv)
    except CnnvsdnnError as ex:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"cnnvsdnn: error: {ex}", file=sys.stderr)
        return ex.exit_code
    except KeyboardInterrupt:
        print("cnnvsdnn: interrupted", file=sys.stderr)
        return 130


# ---------------------------------------------------------------------------------------- train


def _train(args: list[str]) -> int:
    import hydra

    from cnnvsdnn.config import conf_dir, register_schemas

    register_schemas()
    overrides, flags = _split_hydra_args(args)
    modes = {_HYDRA_MODES[f] for f in flags if f in _HYDRA_MODES}
    if len(modes) > 1:  # Hydra would raise a ValueError with a traceback
        raise ConfigError(f"{' and '.join(sorted(modes))} cannot be combined; use one of them "
                          f"(e.g. `cnnvsdnn train model=dnn --cfg job` shows one run's config)")
    if not flags & _HYDRA_INFO_FLAGS and not flags & {"--config-dir", "-cd", "--config-path",
                                                       "-cp", "--config-name", "-cn"}:
        _precheck(overrides, multirun=bool(flags & {"-m", "--multirun"}))

    @hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")
    def _hydra_task(cfg):
        return _run_task(cfg)

    saved = sys.argv
    sys.argv = ["cnnvsdnn train", *args]
    try:
        _hydra_task()
    except SystemExit as ex:  # our one-line errors inside the job, or Hydra's own exit
        return ex.code if isinstance(ex.code, int) else (0 if ex.code is None else 1)
    finally:
        sys.argv = saved
    return 0


def _run_task(cfg) -> float:
    """The job Hydra runs (once per sweep point): a thin wrapper around ``train``."""
    from hydra.core.hydra_config import HydraConfig

    try:
        if cfg.engine.name == "keras":
            from cnnvsdnn.keras_engine import train_keras as run
        else:
            from cnnvsdnn.train import train as run
        return run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except CnnvsdnnError as ex:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"cnnvsdnn: error: {ex}", file=sys.stderr)
        sys.exit(ex.exit_code)
    except OSError as ex:  # a full disk, a file removed under us: the work failed, say where
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        where = f" ({ex.filename})" if ex.filename else ""
        print(f"cnnvsdnn: error: {ex.strerror or ex}{where}; check the disk and the run "
              f"directory, then resume with train.resume=true", file=sys.stderr)
        sys.exit(1)


def _split_hydra_args(args: list[str]) -> tuple[list[str], set[str]]:
    """Separate key=value overrides from Hydra's flags (and the flags' values)."""
    overrides: list[str] = []
    flags: set[str] = set()
    it = iter(args)
    for a in it:
        if a.startswith("-"):
            name = a.split("=", 1)[0]
            flags.add(name)
            if name in _HYDRA_VALUE_FLAGS and "=" not in a and name not in ("--info", "-i"):
                next(it, None)
        else:
            overrides.append(a)
    return overrides, flags


def compose_config(overrides: list[str]):
    """Compose and validate the config for one set of overrides (also used by the tests)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cnnvsdnn.config import conf_dir, register_schemas, validate

    register_schemas()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
    except Exception as ex:  # Hydra and OmegaConf errors become one line
        raise ConfigError(_config_error_line(ex)) from ex
    finally:
        GlobalHydra.instance().clear()
    validate(cfg)
    return cfg


def _precheck(overrides: list[str], multirun: bool) -> None:
    """Compose and validate every point of the run or sweep before any work starts."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    own = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    key = "hydra.sweep.dir=" if multirun else "hydra.run.dir="
    out = [o.split("=", 1)[1] for o in overrides if o.startswith(key)]
    _check_writable(Path(out[-1]) if out else Path("outputs"))
    if not multirun:
        cfg = compose_config(own)
        if out:
            from cnnvsdnn.train import check_run_dir

            check_run_dir(Path(out[-1]), cfg)
        return
    try:
        parsed = OverridesParser.create().parse_overrides(own)
    except Exception as ex:
        raise ConfigError(_config_error_line(ex)) from ex
    choices = []
    for o in parsed:
        key = o.get_key_element()
        if o.is_sweep_override():
            choices.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            choices.append([o.input_line])
    for combo in itertools.islice(itertools.product(*choices), _MAX_PRECHECK):
        compose_config(list(combo))


def _check_writable(path: Path) -> None:
    """The output directory (or its nearest existing parent) must be a writable directory."""
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir() or not os.access(p, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write the output directory {path} ({p} is not a writable "
                          f"directory); choose another with hydra.run.dir=... or "
                          f"hydra.sweep.dir=...")


def _config_error_line(ex: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line messages, as one line with a hint."""
    from hydra.errors import MissingConfigException

    if isinstance(ex, MissingConfigException) and ex.missing_cfg_file:
        group, _, name = ex.missing_cfg_file.rpartition("/")
        options = [o for o in (ex.options or []) if o != "schema"]
        if group:
            return (f"unknown {group} {name!r}; choose one of {', '.join(options)} "
                    f"(the files in conf/{group}/)")
    text = str(ex)
    cause = ex.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text}: {cause}"
    unknown = re.search(r"Could not override '([^']+)'", text)
    if unknown and "not in" in text:
        return f"unknown config key {unknown.group(1)!r}; `cnnvsdnn train --help` lists the keys"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # OmegaConf appends "full_key: ..., object_type=..." lines; keep the key, drop the rest.
    keep = [ln for ln in lines if not ln.startswith(("object_type", "reference_type"))]
    msg = "; ".join(keep) or type(ex).__name__
    return msg + " (see `cnnvsdnn train --help`)"


# ------------------------------------------------------------------------------ other commands


def _other(argv: list[str]) -> int:
    parser = _parser()
    ns = parser.parse_args(argv)
    return ns.func(ns)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message):  # noqa: D102
        self.exit(2, f"cnnvsdnn: error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cnnvsdnn", add_help=False)  # `cnnvsdnn --help` prints USAGE (main)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser("data", help="get, check, list, export and show datasets",
                       description="Datasets live in $CNNVSDNN_DATA_DIR (default "
                       "~/.cache/cnnvsdnn). Official files a user puts in "
                       "$CNNVSDNN_DATA_DIR/<dataset>/ are used before any download.")
    dsub = d.add_subparsers(dest="action", required=True, parser_class=_Parser)
    f = dsub.add_parser("fetch", help="get datasets into the cache")
    f.add_argument("names", nargs="+", metavar="NAME")
    f.add_argument("--mirror", help="base URL serving the official file names, tried first")
    f.add_argument("--no-verify", action="store_true",
                   help="accept files whose checksums differ (user-made copies), with a warning")
    f.set_defaults(func=_data_fetch)
    v = dsub.add_parser("verify", help="check cached datasets against their checksums")
    v.add_argument("names", nargs="+", metavar="NAME")
    v.set_defaults(func=_data_verify)
    ls = dsub.add_parser("list", help="list datasets with status, source and size")
    ls.set_defaults(func=_data_list)
    e = dsub.add_parser("export", help="write a decoded split as .npz (X uint8 (N,H,W,C), y)")
    e.add_argument("name", metavar="NAME")
    e.add_argument("split", choices=["train", "dev", "test", "full_train"],
                   help="train/dev as `cnnvsdnn train` splits them; full_train = the whole "
                   "official training set")
    e.add_argument("out", metavar="OUT.npz")
    e.add_argument("--seed", type=int, default=0, help="seed of the random dev split (0)")
    e.add_argument("--dev-size", type=int, default=5000, help="development images (5000)")
    e.add_argument("--dev-split", choices=["random", "last"], default="random",
                   help="random (with --seed) or the last --dev-size in file order")
    e.add_argument("--no-verify", action="store_true", help="accept user-made copies")
    e.set_defaults(func=_data_export)
    s = dsub.add_parser("show", help="a grid of example images per class (PNG)")
    s.add_argument("name", metavar="NAME")
    s.add_argument("--out", metavar="PNG", help="default: <NAME>_examples.png")
    s.add_argument("--per-class", type=int, default=8, help="images per class (8)")
    s.add_argument("--no-verify", action="store_true", help="accept user-made copies")
    s.set_defaults(func=_data_show)

    sc = sub.add_parser("score", help="metrics of saved predictions",
                        description="Accuracy, per-class F1 and area ratio of an .npz with "
                        "`probs` (N,K) and `labels` (N,).")
    sc.add_argument("predictions", metavar="PREDICTIONS.npz")
    sc.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    sc.set_defaults(func=_score)

    from cnnvsdnn import summarize

    sm = sub.add_parser("summarize", help="statistics over the seeds of a sweep",
                        description=summarize.__doc__.split("\n\n")[0])
    summarize.add_arguments(sm)
    sm.set_defaults(func=summarize.run)

    from cnnvsdnn import report

    rp = sub.add_parser("report", help="the study's tables and figures beside its published values",
                        description="Tables IV-IX and figures 8-16 from run or multirun "
                        "directories, as Markdown, CSV and LaTeX; --experiment NAME first trains "
                        "what is missing (reusing finished runs with the same config).")
    report.add_arguments(rp)
    rp.set_defaults(func=report.run)

    from cnnvsdnn import bench

    b = sub.add_parser("bench", help="engine speed against PyTorch and the NumPy twin",
                       description=bench.__doc__.split("\n\n", 1)[1])
    bench.add_arguments(b)
    b.set_defaults(func=bench.run)
    return p


def _data_fetch(ns) -> int:
    from cnnvsdnn import data

    data.fetch(ns.names, mirror=ns.mirror, verify=not ns.no_verify)
    return 0


def _data_verify(ns) -> int:
    from cnnvsdnn import data

    return 0 if data.verify(ns.names) else 1


def _data_list(ns) -> int:
    from cnnvsdnn import data

    data.list_status()
    return 0


def _data_export(ns) -> int:
    from cnnvsdnn import data

    data.export(ns.name, ns.split, ns.out, dev_size=ns.dev_size, mode=ns.dev_split,
                seed=ns.seed, verify=not ns.no_verify)
    return 0


def _data_show(ns) -> int:
    from cnnvsdnn import data

    data.show(ns.name, ns.out or f"{ns.name}_examples.png", per_class=ns.per_class,
              verify=not ns.no_verify)
    return 0


def _score(ns) -> int:
    import json

    from cnnvsdnn.metrics import format_split_table, load_predictions, split_metrics

    probs, labels = load_predictions(ns.predictions)
    m = split_metrics(probs, labels)
    if ns.json:
        print(json.dumps(m))
    else:
        classes = [str(i) for i in range(len(m["count"]))]
        print(f"{ns.predictions}: n={m['n']} accuracy={m['accuracy']:.4f} "
              f"F1(weighted)={m['f1_weighted']:.4f} AR(weighted)={m['ar_weighted']:.4f}")
        print(format_split_table(m, classes))
    return 0
