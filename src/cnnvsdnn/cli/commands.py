"""The commands other than ``train``: argparse parsers and the small ``data`` and ``score``
handlers; ``report``, ``summarize``, ``ablation`` and ``bench`` bring their own arguments."""

from __future__ import annotations

import argparse
import json

from .. import bench, data
from ..analysis import ablation, report, summarize
from ..errors import ConfigError
from ..evaluation.metrics import format_split_table, load_predictions, split_metrics
from ..run import predict
from ..safe_io import check_output


def other_command(argv: list[str]) -> int:
    """Every command but ``train``; returns the exit code."""
    overrides = []
    if argv[0] == "ablation" and "--" in argv:  # train overrides for every run of the ablation
        argv, overrides = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    ns = _parser().parse_args(argv)
    ns.overrides = overrides
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
    e = dsub.add_parser("export", help="write a decoded split as .npz (X uint8 (N,H,W,C), y) "
                        "or as a folder of class subfolders of PNG images")
    e.add_argument("name", metavar="NAME")
    e.add_argument("split", choices=["train", "dev", "test", "full_train"],
                   help="train/dev as `cnnvsdnn train` splits them; full_train = the whole "
                   "official training set")
    e.add_argument("out", metavar="OUT.npz|DIR",
                   help="an .npz file, or a new folder: DIR/<class>/<index>.png, which "
                   "`cnnvsdnn train dataset=folder dataset.path=...` reads")
    e.add_argument("--format", choices=["npz", "folder"],
                   help="default: npz if OUT ends in .npz, else folder")
    e.add_argument("--seed", type=int, default=0, help="seed of the random dev split (0)")
    e.add_argument("--dev-size", type=int, default=5000, help="development images (5000)")
    e.add_argument("--dev-split", choices=["random", "last"], default="random",
                   help="random (with --seed) or the last --dev-size in file order")
    e.add_argument("--no-verify", action="store_true", help="accept user-made copies")
    e.add_argument("--force", action="store_true", help="replace an existing OUT file")
    e.set_defaults(func=_data_export)
    s = dsub.add_parser("show", help="a grid of example images per class (PNG)")
    s.add_argument("name", metavar="NAME")
    s.add_argument("--out", metavar="PNG", help="default: <NAME>_examples.png")
    s.add_argument("--per-class", type=int, default=8, help="images per class (8)")
    s.add_argument("--no-verify", action="store_true", help="accept user-made copies")
    s.add_argument("--force", action="store_true", help="replace an existing --out file")
    s.set_defaults(func=_data_show)

    sc = sub.add_parser("score", help="metrics of saved predictions",
                        description="Accuracy, per-class F1 and area ratio of an .npz with "
                        "`probs` (N,K) and `labels` (N,).")
    sc.add_argument("predictions", metavar="PREDICTIONS.npz")
    sc.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    sc.set_defaults(func=_score)

    pr = sub.add_parser("predict", help="a trained run's class and probabilities for images",
                        description=predict.__doc__.split("\n\n")[1].replace("\n", " "))
    predict.add_arguments(pr)
    pr.set_defaults(func=predict.run)

    sm = sub.add_parser("summarize", help="statistics over the seeds of a sweep",
                        description=summarize.__doc__.split("\n\n")[0])
    summarize.add_arguments(sm)
    sm.set_defaults(func=summarize.run)

    rp = sub.add_parser("report", help="the study's tables and figures beside its published values",
                        description="Tables IV-IX and figures 8-16 from run or multirun "
                        "directories, as Markdown, CSV and LaTeX; --experiment NAME first trains "
                        "what is missing (reusing finished runs with the same config).")
    report.add_arguments(rp)
    rp.set_defaults(func=report.run)

    b = sub.add_parser("bench", help="engine speed against PyTorch, JAX and the NumPy twin",
                       description=bench.__doc__.split("\n\n", 1)[1])
    bench.add_arguments(b)
    b.set_defaults(func=bench.run)

    ab = sub.add_parser("ablation", help="the study's section 5.10 ablation over seeds",
                        description=ablation.__doc__.split("\n\n")[0] + " Train overrides "
                        "for every run go after `--`.")
    ablation.add_arguments(ab)
    ab.set_defaults(func=ablation.run)
    return p


def _data_fetch(ns) -> int:
    data.fetch(ns.names, mirror=ns.mirror, verify=not ns.no_verify)
    return 0


def _data_verify(ns) -> int:
    return 0 if data.verify(ns.names) else 1


def _data_list(ns) -> int:
    data.list_status()
    return 0


def _data_export(ns) -> int:
    if ns.format == "npz" or (ns.format is None and str(ns.out).endswith(".npz")):
        check_output(ns.out, force=ns.force, what="export file", flag="OUT")
    out = data.export(ns.name, ns.split, ns.out, dev_size=ns.dev_size, mode=ns.dev_split,
                      seed=ns.seed, verify=not ns.no_verify, fmt=ns.format)
    print(f"wrote {out}")
    return 0


def _data_show(ns) -> int:
    if not 1 <= ns.per_class <= 100:
        raise ConfigError(f"--per-class {ns.per_class} must be between 1 and 100")
    out = check_output(ns.out or f"{ns.name}_examples.png", force=ns.force, what="figure",
                       flag="--out")
    data.show(ns.name, out, per_class=ns.per_class,
              verify=not ns.no_verify)
    return 0


def _score(ns) -> int:
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
