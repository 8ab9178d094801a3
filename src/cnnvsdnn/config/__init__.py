"""The configuration: its schema (``schema.py``), composing one from overrides
(``compose.py``), and validating it before any work (``validate.py``)."""

from .compose import (
           compose_config,
           compose_job,
           conf_dir,
           config_diff,
           config_error_line,
           flat_config,
           model_layers,
           register_schemas,
)
from .schema import (
           NOT_A_RESULT,
           SAME_RESULT,
           Config,
           DevSplit,
           default_of,
           keys_affecting,
           unused_keys,
           with_defaults,
)
from .validate import ENGINES, validate

__all__ = ["ENGINES", "NOT_A_RESULT", "SAME_RESULT", "Config", "DevSplit", "compose_config",
           "conf_dir", "config_diff", "config_error_line", "default_of", "flat_config",
           "compose_job", "keys_affecting", "model_layers", "register_schemas", "unused_keys",
           "validate", "with_defaults"]
