"""Where the configs live, composing one config from overrides, and comparing two configs."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict

from ..data import dataset_info
from ..errors import ConfigError
from .schema import NOT_A_RESULT, Config, unused_keys, with_defaults
from .validate import validate


def conf_dir() -> Path:
    """The Hydra config directory: inside the installed wheel, else the checkout's ``conf/``."""
    here = Path(__file__).resolve().parent.parent  # the cnnvsdnn package
    packaged = here / "conf"
    if (packaged / "config.yaml").is_file():
        return packaged
    checkout = here.parents[1] / "conf"
    if (checkout / "config.yaml").is_file():
        return checkout
    raise ConfigError(
        f"cannot find the configs (looked in {packaged} and {checkout}); reinstall cnnvsdnn"
    )


def n_classes(*, _root_) -> int:
    """``${n_classes:}`` in a model's last layer: the classes of the config's dataset (10 for
    the built-in sets; what a folder or .npz holds), so a resolved config says the number."""
    return dataset_info(_root_.dataset).n_classes


def register_schemas() -> None:
    """Make the schema known to Hydra (``defaults: [schema, ...]`` in conf/config.yaml)."""
    # One schema for the whole tree: each group's YAML is merged into its typed node.
    ConfigStore.instance().store(name="schema", node=Config)
    OmegaConf.register_new_resolver("n_classes", n_classes, replace=True)


# At import too: a launcher's worker process resolves configs without calling the above.
OmegaConf.register_new_resolver("n_classes", n_classes, replace=True)


def compose_config(overrides: list[str]) -> DictConfig:
    """Compose and validate the config of one run from ``key=value`` overrides."""
    register_schemas()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
    except Exception as ex:  # Hydra and OmegaConf errors become one line
        raise ConfigError(config_error_line(ex)) from ex
    finally:
        GlobalHydra.instance().clear()
    validate(cfg)
    return cfg


def model_layers(model: str, dataset: str = "mnist") -> list[dict]:
    """The layer list of ``conf/model/<model>.yaml`` as ``cnnvsdnn train model=... dataset=...``
    composes it: validated, the last layer's ``${n_classes:}`` resolved for the dataset."""
    cfg = compose_config([f"model={model}", f"dataset={dataset}"])
    return OmegaConf.to_container(cfg.model.layers, resolve=True)


def compose_job(overrides: list[str], multirun: bool, job_num: int = 0) -> tuple[DictConfig, Path]:
    """The validated config of one job with these overrides (Hydra's own included) and the
    directory Hydra will give it: ``hydra.run.dir``, or for job ``job_num`` of a multirun
    ``hydra.sweep.dir``/``hydra.sweep.subdir``, resolved as Hydra resolves them. Composing
    Hydra's own config also checks its overrides: a one-line ConfigError for a bad one."""
    register_schemas()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose("config", overrides=overrides, return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.job.num = job_num
            run_dir = Path(cfg.hydra.sweep.dir) / str(cfg.hydra.sweep.subdir) if multirun \
                else Path(cfg.hydra.run.dir)
            del cfg["hydra"]
    except Exception as ex:
        raise ConfigError(config_error_line(ex)) from ex
    finally:
        GlobalHydra.instance().clear()
    validate(cfg)
    return cfg, run_dir


def config_error_line(ex: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line messages, as one line with a hint."""
    if isinstance(ex, OverrideParseException):
        line = re.search(r"Exception: (.*)", str(ex))
        what = f"the override {line.group(1)!r}" if line else "an override"
        return (f"cannot parse {what}: quote a value that holds spaces or special characters "
                f"(key='a b'), and close every quote and bracket")
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


def flat_config(d: dict, prefix: str = "") -> dict:
    """``{"train": {"steps": 5}}`` -> ``{"train.steps": 5}``."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_diff(saved_yaml: str, current_yaml: str, ignore=NOT_A_RESULT) -> list[str]:
    """The keys whose values differ between two resolved configs (as written to config.yaml),
    leaving out ``ignore`` (default: the keys that change nothing a run computes) and the keys
    neither config uses (``engine.fit_batch_size`` between two numba runs). A key one config
    lacks (written before the key existed) counts as the schema's default."""
    a = with_defaults(flat_config(yaml.safe_load(saved_yaml) or {}))
    b = with_defaults(flat_config(yaml.safe_load(current_yaml) or {}))
    unused = unused_keys(a) & unused_keys(b)
    return sorted(k for k in a.keys() | b.keys()
                  if k not in ignore and k not in unused and a.get(k) != b.get(k))
