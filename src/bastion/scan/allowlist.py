"""Which imports a pickle may make: per-framework allow-lists that fail closed, and gadgets.

A deny-list alone always has gaps (every public scanner bypass so far was a
callable nobody had listed), so the decision is made the other way round: an
import is *allowed* only when a framework's list names it; anything else is at
least suspicious. On top of that, a deny-list of known code-execution gadgets
(and every submodule of a gadget module) turns an import into a critical
finding, because those are what real payloads use.

Names are matched the way `pickle.Unpickler.find_class` resolves them: the
Python 2 compatibility mapping applies below protocol 3, and protocol 4+
resolves dotted names attribute by attribute, so every segment is checked.
"""

from __future__ import annotations

import functools
import re
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources

import yaml

__all__ = [
    "FRAMEWORKS",
    "LOADS_LIKE",
    "ImportClass",
    "ImportDecision",
    "classify_import",
    "resolve_name",
]


class ImportClass(StrEnum):
    ALLOWED = "allowed"
    UNKNOWN = "unknown"
    GADGET = "gadget"


@dataclass(frozen=True)
class ImportDecision:
    module: str
    name: str
    verdict: ImportClass
    framework: str | None = None
    reason: str = ""


def _load_gadgets() -> dict[str, list[str]]:
    text = resources.files("bastion.scan").joinpath("gadgets.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return {key: str(value).split() for key, value in data.items()}


def _pairs(items: list[str]) -> frozenset[tuple[str, str]]:
    return frozenset((m, n) for m, _, n in (item.partition(":") for item in items))


_GADGETS = _load_gadgets()
_GADGET_MODULES = frozenset(_GADGETS["modules"])
_GADGET_NAMES = _pairs(_GADGETS["names"])
_GADGET_SEGMENTS = frozenset(_GADGETS["segments"])
LOADS_LIKE = _pairs(_GADGETS["loads_like"])

# Class-like names (PCA, SVC, GELU, KDTree, _BinMapper); re-exported gadgets such as
# `Popen` are caught by the deny-list's name segments before any allow-list is read.
_CAMEL = re.compile(r"^_?[A-Z][A-Za-z0-9_]*$")
_PYX = re.compile(r"^__pyx_unpickle_[A-Za-z0-9_]+$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _python_allowed(module: str, name: str) -> bool:
    return (module, name) in _PYTHON


_PYTHON = frozenset(
    {
        ("builtins", n)
        for n in [
            "set",
            "frozenset",
            "slice",
            "complex",
            "bytearray",
            "range",
            "int",
            "float",
            "str",
            "bytes",
            "list",
            "dict",
            "tuple",
            "bool",
            "object",
            "NoneType",
            "Ellipsis",
            "NotImplemented",
        ]
    }
    | {("copyreg", n) for n in ("_reconstructor", "__newobj__", "__newobj_ex__")}
    | {("collections", n) for n in ("OrderedDict", "defaultdict", "deque", "Counter")}
    | {("_codecs", "encode"), ("codecs", "encode"), ("codecs", "decode")}
    | {("datetime", n) for n in ("datetime", "date", "time", "timedelta", "timezone")}
    | {("decimal", "Decimal"), ("fractions", "Fraction"), ("uuid", "UUID")}
    | {("types", "SimpleNamespace"), ("array", "array"), ("array", "_array_reconstructor")}
    | {("pathlib", n) for n in ("PosixPath", "PurePosixPath", "WindowsPath", "PureWindowsPath")}
    | {("argparse", "Namespace"), ("enum", "Enum"), ("re", "_compile")}
)

_NUMPY = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy", "matrix"),
        ("numpy.matrixlib.defmatrix", "matrix"),
        ("numpy.ma.core", "MaskedArray"),
        ("numpy.ma", "MaskedArray"),
        ("numpy.ma.core", "MaskedConstant"),
        ("numpy.ma.core", "_mareconstruct"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random.bit_generator", "SeedSequence"),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        ("numpy.random.mtrand", "RandomState"),
    }
    | {
        (prefix + sub, n)
        for prefix in ("numpy.core", "numpy._core")
        for sub, n in (
            (".multiarray", "_reconstruct"),
            (".multiarray", "scalar"),
            (".numeric", "_frombuffer"),
            ("._multiarray_umath", "_reconstruct"),
            (".multiarray", "_frombuffer"),
        )
    }
    | {
        ("numpy.random." + m, c)
        for m, c in (
            ("_mt19937", "MT19937"),
            ("_pcg64", "PCG64"),
            ("_pcg64", "PCG64DXSM"),
            ("_philox", "Philox"),
            ("_sfc64", "SFC64"),
            ("_generator", "Generator"),
        )
    }
)


def _numpy_allowed(module: str, name: str) -> bool:
    if (module, name) in _NUMPY:
        return True
    if module == "numpy.dtypes" and _CAMEL.match(name) and name.endswith("DType"):
        return True
    if module in ("numpy", "numpy.core.umath", "numpy._core.umath") and _IDENT.match(name):
        return _is_numpy_value_type_or_ufunc(name)
    return False


def _is_numpy_value_type_or_ufunc(name: str) -> bool:
    """Ufuncs (`np.log1p` in a FunctionTransformer) and scalar types (`dtype=np.float64`).

    Both are plain maths or plain types. The check reads numpy's module dict; it
    never resolves an attacker-chosen attribute through `getattr`, which could
    run a module `__getattr__`.
    """
    import numpy

    obj = vars(numpy).get(name)
    if isinstance(obj, numpy.ufunc):
        return True
    return isinstance(obj, type) and issubclass(obj, numpy.generic)


_SKLEARN_FUNCS = frozenset({"newObj", "_reconstruct"})


def _sklearn_allowed(module: str, name: str) -> bool:
    if not (module == "sklearn" or module.startswith("sklearn.")):
        return False
    return bool(_CAMEL.match(name) or _PYX.match(name) or name in _SKLEARN_FUNCS)


_SPARSE = re.compile(r"^(coo|csr|csc|lil|dok|bsr|dia)_(matrix|array)$")


def _scipy_allowed(module: str, name: str) -> bool:
    if module == "scipy.sparse" or module.startswith("scipy.sparse."):
        return bool(_CAMEL.match(name) or _SPARSE.match(name))
    return module.startswith("scipy.stats._distn_infrastructure") and bool(_CAMEL.match(name))


def _joblib_allowed(module: str, name: str) -> bool:
    return module == "joblib.numpy_pickle" and name in (
        "NumpyArrayWrapper",
        "NDArrayWrapper",
        "ZNDArrayWrapper",
    )


_TORCH_REBUILD = re.compile(r"^_rebuild_[a-z0-9_]+$")
_TORCH_STORAGE = re.compile(r"^[A-Z][A-Za-z0-9]*Storage$")
_TORCH_DTYPES = frozenset(
    [
        "float32",
        "float",
        "float64",
        "double",
        "float16",
        "half",
        "bfloat16",
        "complex64",
        "complex128",
        "uint8",
        "int8",
        "int16",
        "short",
        "int32",
        "int",
        "int64",
        "long",
        "bool",
        "qint8",
        "quint8",
        "qint32",
        "float8_e4m3fn",
        "float8_e5m2",
        "uint16",
        "uint32",
        "uint64",
        "contiguous_format",
        "channels_last",
        "channels_last_3d",
        "preserve_format",
        "per_tensor_affine",
        "per_channel_affine",
        "strided",
        "sparse_coo",
        "sparse_csr",
    ]
)


def _torch_allowed(module: str, name: str) -> bool:
    if module == "torch._utils" and _TORCH_REBUILD.match(name):
        return True
    if module == "torch._tensor" and name == "_rebuild_from_type_v2":
        return True
    if module == "torch":
        return (
            name in _TORCH_DTYPES
            or name in ("device", "Size", "Tensor", "dtype")
            or bool(_TORCH_STORAGE.match(name))
        )
    if module == "torch.storage" and name in ("UntypedStorage", "TypedStorage"):
        return True
    if module == "torch.serialization" and name == "_get_layout":
        return True
    if module == "torch.nn.parameter" and name in ("Parameter", "Buffer"):
        return True
    if module.startswith("torch.nn.modules.") and _CAMEL.match(name):
        return True
    return module in ("torch.nn.functional", "torch.nn.init") and bool(_IDENT.match(name))


# TorchScript archives are read by torch.jit's own unpickler: globals resolve to script
# classes (`__torch__.*`) and a few list builders, never to arbitrary Python.
_JIT_BUILDERS = frozenset(
    ("torch.jit._pickle", n)
    for n in (
        "build_intlist",
        "build_tensorlist",
        "build_doublelist",
        "build_boollist",
        "build_tensor_from_id",
        "restore_type_tag",
    )
)


def _torchscript_allowed(module: str, name: str) -> bool:
    if (module, name) in _JIT_BUILDERS:
        return True
    return (module == "__torch__" or module.startswith("__torch__.")) and bool(_IDENT.match(name))


def _pandas_allowed(module: str, name: str) -> bool:
    if not module.startswith("pandas."):
        return False
    return bool(_CAMEL.match(name) or re.match(r"^_(new|unpickle)_[A-Za-z_]+$", name))


def _boosting_allowed(module: str, name: str) -> bool:
    roots = ("xgboost.", "lightgbm.", "catboost.")
    return module.startswith(roots) and bool(_CAMEL.match(name))


_TYPING = frozenset({"Any", "Dict", "List", "Optional", "Tuple", "Union", "Set"})
_ATTRIBUTE_DICTS = frozenset(
    {
        ("pytorch_lightning.utilities.parsing", "AttributeDict"),
        ("lightning_fabric.utilities.data", "AttributeDict"),
        ("lightning.fabric.utilities.data", "AttributeDict"),
    }
)


def _config_allowed(module: str, name: str) -> bool:
    """Training configs saved inside checkpoints (Hydra/OmegaConf, Lightning hparams)."""
    if module == "typing":
        return name in _TYPING
    if (module, name) in _ATTRIBUTE_DICTS:
        return True
    return module.startswith("omegaconf.") and bool(_CAMEL.match(name))


# Frameworks a format may draw on; the scanner passes the subset that fits the file.
FRAMEWORKS = {
    "python": _python_allowed,
    "numpy": _numpy_allowed,
    "sklearn": _sklearn_allowed,
    "scipy": _scipy_allowed,
    "joblib": _joblib_allowed,
    "torch": _torch_allowed,
    "pandas": _pandas_allowed,
    "boosting": _boosting_allowed,
    "configs": _config_allowed,
    "torchscript": _torchscript_allowed,
}


def resolve_name(module: str, name: str, protocol: int) -> tuple[str, str]:
    """Apply the Python 2 name mapping exactly where `Unpickler.find_class` does."""
    if protocol < 3:
        if (module, name) in NAME_MAPPING:
            return NAME_MAPPING[(module, name)]
        if module in IMPORT_MAPPING:
            return IMPORT_MAPPING[module], name
    return module, name


def _is_gadget(module: str, name: str) -> str | None:
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        prefix = ".".join(parts[:i])
        if prefix in _GADGET_MODULES:
            return f"module {prefix} executes code or touches the system"
        if i < len(parts) and f"{prefix}.{name}" in _GADGET_MODULES:
            return f"{prefix}.{name} executes code"
    segments = name.split(".")
    if (module, segments[0]) in _GADGET_NAMES or (module, name) in _GADGET_NAMES:
        return f"{module}.{segments[0]} is a code-execution gadget"
    if f"{module}.{segments[0]}" in _GADGET_MODULES:
        return f"{module}.{segments[0]} executes code"
    for seg in segments:
        if seg in _GADGET_SEGMENTS:
            return f"attribute {seg!r} is a code-execution gadget"
    return None


def classify_import(
    module: str, name: str, *, protocol: int = 5, frameworks: tuple[str, ...] | None = None
) -> ImportDecision:
    """Gadget first (critical), then the allow-lists of the given frameworks, else unknown.

    The lists are fixed at import time, so a decision depends on its arguments
    alone; a model names the same few classes thousands of times, hence the cache.
    """
    return _classify(module, name, protocol < 3, frameworks)


@functools.lru_cache(maxsize=4096)
def _classify(
    module: str, name: str, py2: bool, frameworks: tuple[str, ...] | None
) -> ImportDecision:
    protocol = 2 if py2 else 3
    raw_reason = _is_gadget(module, name)
    module_r, name_r = resolve_name(module, name, protocol)
    reason = raw_reason or _is_gadget(module_r, name_r)
    harmless = _python_allowed(module_r, name_r) or (module_r, name_r) in _JIT_BUILDERS
    if reason is not None and not harmless:
        return ImportDecision(module_r, name_r, ImportClass.GADGET, reason=reason)
    if "." not in name_r and _IDENT.match(name_r):
        for fw in frameworks or tuple(FRAMEWORKS):
            if FRAMEWORKS[fw](module_r, name_r):
                return ImportDecision(module_r, name_r, ImportClass.ALLOWED, framework=fw)
    why = "dotted attribute path" if "." in name_r else "not on any framework allow-list"
    return ImportDecision(module_r, name_r, ImportClass.UNKNOWN, reason=why)
