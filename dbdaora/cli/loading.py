"""What a command is given by name: a model as ``module:Model``, the settings, a record name."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from dbdaora import settings
from dbdaora.exceptions import ConfigurationError
from dbdaora.meta import CorruptData, ModelMeta


def load_model(path: str) -> ModelMeta:
    """The metadata of the model ``module:Model`` names, importing its module.

    Raises:
        ConfigurationError: no ``:``, a module that does not import, no such name,
            or a name that is no dbdaora model.
    """
    module_name, colon, name = path.partition(":")
    if not colon or not module_name or not name:
        raise ConfigurationError(f"expected a model as module:Model, got {path!r}")
    if os.getcwd() not in sys.path:  # as `python -m` does, for the console script too
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # whatever the module's own code raises, told in one line
        raise ConfigurationError(
            f"cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    model = getattr(module, name, None)
    if model is None:
        raise ConfigurationError(f"module {module_name!r} has no {name!r}")
    meta = getattr(model, "_meta", None)
    if not isinstance(model, type) or not isinstance(meta, ModelMeta):
        raise ConfigurationError(f"{path!r} is {model!r}, not a dbdaora model")
    return meta


def configure(memory: str | None, fallback: str | None) -> settings.Settings:
    """The settings in force, with ``--memory`` and ``--fallback`` over the module's.

    Raises:
        ConfigurationError: ``DBDAORA_SETTINGS`` does not import, or a bad value.
    """
    given: dict[str, Any] = {}
    if memory is not None:
        given["memory"] = memory
    if fallback is not None:
        given["fallback"] = fallback
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    settings.configure(**given)
    return settings.current()


def parts_of(meta: ModelMeta, name: str) -> tuple[Any, ...] | None:
    """The key parts of a record name, None when no key of the model is named so."""
    try:
        parts = meta.parts_of(name)
    except CorruptData:  # a part no codec of the key reads: not a record of this model
        return None
    return parts if meta.key_text(parts) == name else None
