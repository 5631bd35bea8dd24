"""Allow-lists fail closed; gadgets are critical whatever path reaches them."""

from __future__ import annotations

import pytest

from bastion.scan.allowlist import ImportClass, classify_import


@pytest.mark.parametrize(
    ("module", "name", "proto", "frameworks"),
    [
        ("numpy._core.multiarray", "_reconstruct", 4, ("numpy",)),
        ("numpy", "log1p", 4, ("numpy",)),
        ("sklearn.tree._tree", "Tree", 4, ("sklearn",)),
        ("sklearn.neighbors._kd_tree", "newObj", 4, ("sklearn",)),
        ("torch._utils", "_rebuild_tensor_v2", 2, ("torch",)),
        ("torch", "BFloat16Storage", 2, ("torch",)),
        ("torch.nn.modules.linear", "Linear", 2, ("torch",)),
        ("collections", "OrderedDict", 2, ("python",)),
        ("__builtin__", "set", 2, ("python",)),
        ("types", "SimpleNamespace", 4, ("python",)),
    ],
)
def test_framework_objects_are_allowed(
    module: str, name: str, proto: int, frameworks: tuple[str, ...]
) -> None:
    assert classify_import(module, name, protocol=proto, frameworks=frameworks).verdict is (
        ImportClass.ALLOWED
    )


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("numpy", "load"),
        ("numpy.testing._private.utils", "runstring"),
        ("sklearn.utils._testing", "assert_run_python_script_without_output"),
        ("torch.storage", "_load_from_bytes"),
        ("torch.serialization", "load"),
        ("builtins", "getattr"),
        ("posix", "system"),
        ("nt", "system"),
        ("importlib.machinery", "SourceFileLoader"),
        ("collections", "os.system"),
        ("pathlib", "Path.write_text"),
        ("asyncio.unix_events", "_UnixSubprocessTransport"),
        ("_operator", "methodcaller"),
        ("logging.config", "listen"),
    ],
)
def test_gadgets_are_critical(module: str, name: str) -> None:
    assert classify_import(module, name).verdict is ImportClass.GADGET


@pytest.mark.parametrize(
    ("module", "name", "frameworks"),
    [
        ("mylib", "Model", None),
        ("numpy", "ALLOW_THREADS", None),
        ("sklearn.tree._tree", "Tree", ("torch",)),
        ("torch._utils", "_rebuild_tensor_v2", ("sklearn",)),
        ("collections", "OrderedDict.fromkeys", None),
        ("numpy", "not_a_ufunc_name", None),
    ],
)
def test_everything_else_is_unknown(
    module: str, name: str, frameworks: tuple[str, ...] | None
) -> None:
    assert classify_import(module, name, frameworks=frameworks).verdict is ImportClass.UNKNOWN


def test_python2_mapping_cannot_hide_a_gadget_at_any_protocol() -> None:
    for proto in (0, 2, 4):
        assert classify_import("__builtin__", "eval", protocol=proto).verdict is ImportClass.GADGET
