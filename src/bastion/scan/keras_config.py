"""Keras model configs: where a "model file" carries Python to run.

A `.keras` archive (and the `model_config` attribute of a legacy `.h5`) is
JSON naming every layer's class and module. A `Lambda` layer carries
marshalled Python bytecode that runs when the model is built (CVE-2024-3660,
CVE-2025-1550), and a `module`/`registered_name` outside Keras makes the
loader import that module. Both are judged from the JSON alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from bastion.scan.rules import Issue

__all__ = ["check_keras_config"]

_ALLOWED_ROOTS = ("keras", "tf_keras", "tensorflow.keras", "tensorflow.python.keras")
_CODE_CLASSES = {"Lambda", "TFOpLambda", "SlicingOpLambda"}


def _walk(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}/{i}")


def _module_ok(module: Any) -> bool:
    if module is None or module == "builtins":
        return True
    return isinstance(module, str) and (
        module in _ALLOWED_ROOTS or module.startswith(tuple(r + "." for r in _ALLOWED_ROOTS))
    )


def check_keras_config(text: bytes | str, member: str | None) -> list[Issue]:
    try:
        config = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        return [Issue("S301", f"Keras config is not valid JSON: {exc}", member, "keras-json")]
    issues: list[Issue] = []
    for path, node in _walk(config, ""):
        cls = node.get("class_name")
        where = path or "/"
        if cls in _CODE_CLASSES or node.get("function_type") == "lambda" or "__lambda__" in node:
            issues.append(
                Issue(
                    "S303",
                    f"{cls or 'function'} at {where} carries Python code that runs on load",
                    member,
                    f"lambda:{where}",
                    {"json_path": where, "class_name": cls},
                )
            )
            continue
        module = node.get("module")
        registered = node.get("registered_name")
        custom_name = isinstance(registered, str) and ">" in registered
        if ("module" in node and not _module_ok(module)) or custom_name:
            issues.append(
                Issue(
                    "S304",
                    f"{cls!r} at {where} comes from module {module!r} (registered as "
                    f"{registered!r}); loading imports code outside Keras",
                    member,
                    f"module:{module}:{cls}",
                    {"json_path": where, "module": module, "registered_name": registered},
                )
            )
    return issues
