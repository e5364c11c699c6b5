"""Thresholds for the screening models, loaded from YAML.

Thresholds are configuration, not code: the package ships defaults in ``thresholds.yaml`` (values
from BRIEF §2.2, marked [C] practitioner or [P] proposal there) and a pooling area overrides any of
them with its own YAML file, which is deep-merged over the defaults so it only names what differs.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from fraudscan.errors import FraudscanError

Config = dict[str, Any]


class ConfigError(FraudscanError):
    """A thresholds file cannot be read or names something unknown."""


def packaged_yaml(package: str, filename: str) -> Config:
    """A YAML file shipped inside ``package`` (a fresh copy each call)."""
    return yaml.safe_load(resources.files(package).joinpath(filename).read_text("utf-8"))


def default_config() -> Config:
    """The packaged screening-model defaults (a fresh copy each call, so callers may mutate it)."""
    return packaged_yaml("fraudscan.leads", "thresholds.yaml")


def _merge(base: dict[str, Any], over: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key not in out:
            raise ConfigError(f"unknown setting {where}{key!r} (check the spelling against the "
                              "packaged thresholds.yaml)")
        if isinstance(out[key], dict) and isinstance(value, Mapping):
            out[key] = _merge(out[key], value, f"{where}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    base: Config | None = None,
) -> Config:
    """Defaults (``base``, else the screening thresholds) overridden by ``config``.

    ``config`` is a YAML path or a mapping. Unknown keys fail loudly because a misspelt
    threshold silently falling back to the default is the worst outcome for an inspector tuning
    a pooling area.
    """
    base = default_config() if base is None else base
    if config is None:
        return base
    if isinstance(config, Mapping):
        return _merge(base, config, "")
    path = Path(config)
    if not path.is_file():
        raise ConfigError(f"thresholds file {path} does not exist")
    try:
        over = yaml.safe_load(path.read_text("utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(over, Mapping):
        raise ConfigError(f"{path}: expected a mapping of detector name to settings")
    return _merge(base, over, "")
