"""The scan test corpus, generated at test time: benign models and malicious variants.

Every payload is harmless (it would create a marker file in the sample
directory) and nothing here ever loads a sample. Each sample states the
verdict the scanner must give; `benchmarks/scan_vs_peers.py` runs the same
corpus through peer scanners.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import pickle
import struct
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pickle_asm import Asm, ZipSpec

BENIGN, MALICIOUS, SUSPICIOUS, UNSCANNABLE = "clean", "malicious", "suspicious", "could-not-scan"


@dataclass(frozen=True)
class Sample:
    name: str
    path: Path
    expected: str  # the verdict the scanner must give
    technique: str
    malicious: bool  # ground truth: would loading it run attacker code or escape?


class Corpus:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.marker = root / "PWNED"
        self.samples: list[Sample] = []
        root.mkdir(parents=True, exist_ok=True)

    @property
    def cmd(self) -> str:
        return f"touch {self.marker}"

    def add(
        self,
        name: str,
        data: bytes,
        expected: str,
        technique: str,
        *,
        malicious: bool | None = None,
    ) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        bad = expected != BENIGN if malicious is None else malicious
        self.samples.append(Sample(name, path, expected, technique, bad))
        return path

    # -- payload building blocks --------------------------------------------------------------
    def system(self, proto: int = 2) -> bytes:
        return Asm(proto).call("os", "system", self.cmd).stop()

    def torch_pkl(self, extra: Asm | None = None) -> bytes:
        a = Asm(2).glob("collections", "OrderedDict").empty_tuple().reduce().put(0)
        a.s("weight").glob("torch._utils", "_rebuild_tensor_v2").mark()
        a.mark().s("storage").glob("torch", "FloatStorage").s("0").s("cpu").int(6).tup().persid()
        a.int(0).int(2).int(3).t2().int(3).int(1).t2().raw(b"\x89")
        a.glob("collections", "OrderedDict").empty_tuple().reduce().tup().reduce().setitem()
        if extra is not None:
            a.s("x").raw(bytes(extra.b)).setitem()
        return a.stop()

    def torch_zip(self, pkl: bytes, *, root: str = "archive", **member_kw: object) -> ZipSpec:
        z = ZipSpec()
        z.add(f"{root}/data.pkl", pkl, **member_kw)
        z.add(f"{root}/byteorder", b"little")
        z.add(f"{root}/data/0", np.arange(6, dtype=np.float32).tobytes())
        z.add(f"{root}/version", b"3\n")
        return z


def _benign_sklearn(c: Corpus) -> None:
    import joblib
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    rng = np.random.default_rng(0)
    x = rng.random((40, 4))
    y = (x[:, 0] > 0.5).astype(int)
    models = {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression()),
        "forest": RandomForestClassifier(n_estimators=3, random_state=0),
        "knn": KNeighborsClassifier(algorithm="kd_tree"),
        "log1p": make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()),
    }
    for name, model in models.items():
        model.fit(x, y)
        for proto in (0, 2, 4, 5):
            c.add(
                f"benign/{name}.p{proto}.bin",
                pickle.dumps(model, protocol=proto),
                BENIGN,
                "sklearn",
            )
        buf = io.BytesIO()
        joblib.dump(model, buf)
        c.add(f"benign/{name}.joblib", buf.getvalue(), BENIGN, "joblib")
    model = models["forest"]
    for codec in ("zlib", "gzip", "bz2", "xz", "lzma"):
        path = c.root / f"benign/forest.{codec}.joblib"
        joblib.dump(model, path, compress=(codec, 3))
        c.samples.append(Sample(f"benign/{path.name}", path, BENIGN, f"joblib-{codec}", False))
    buf = io.BytesIO()
    joblib.dump({"w": np.ones((3, 3)), "labels": np.array(["a", 1], dtype=object)}, buf)
    c.add("benign/arrays.joblib", buf.getvalue(), BENIGN, "joblib object array")


def _benign_tensors(c: Corpus) -> None:
    buf = io.BytesIO()
    np.save(buf, np.arange(12, dtype=np.float64).reshape(3, 4))
    c.add("benign/array.npy", buf.getvalue(), BENIGN, "numpy")
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.arange(3), b=np.ones((2, 2)))
    c.add("benign/arrays.npz", buf.getvalue(), BENIGN, "numpy npz")
    c.add(
        "benign/plain.p0.pkl",
        pickle.dumps({"a": [1, 2.5, "x"], "b": (None, True)}, 0),
        BENIGN,
        "data",
    )
    c.add("benign/weights.safetensors", safetensors({"w": (np.ones((2, 3), np.float32), "F32"),
          "b": (np.zeros(3, np.int64), "I64")}), BENIGN, "safetensors")  # fmt: skip
    c.add("benign/model.onnx", onnx_model(), BENIGN, "onnx")
    c.add("benign/model.keras", keras_zip(keras_config()), BENIGN, "keras")
    c.add("benign/torch_hand.pt", c.torch_zip(c.torch_pkl()).build(), BENIGN, "torch zip (by hand)")
    try:
        import torch
    except ImportError:
        return
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.BatchNorm1d(2))
    for name, obj, kw in (
        ("state_dict.pt", net.state_dict(), {}),
        ("full_module.pt", net, {}),
        ("checkpoint.pt", {"model": net.state_dict(), "epoch": 3,
         "optim": torch.optim.Adam(net.parameters()).state_dict()}, {}),
        ("legacy.pt", net.state_dict(), {"_use_new_zipfile_serialization": False}),
    ):  # fmt: skip
        buf = io.BytesIO()
        torch.save(obj, buf, **kw)
        c.add(f"benign/torch_{name}", buf.getvalue(), BENIGN, "torch")


def _malicious_pickles(c: Corpus) -> None:
    cmd = c.cmd
    for proto in (0, 1, 2, 3, 4, 5):

        class Payload:
            def __reduce__(self) -> tuple[Callable[..., int], tuple[str]]:
                return (os.system, (cmd,))

        c.add(f"mal/os_system.p{proto}.pkl", pickle.dumps(Payload(), protocol=proto), MALICIOUS,
              "reduce os.system")  # fmt: skip
    c.add("mal/renamed.bin", c.system(), MALICIOUS, "CVE-2025-10155 extension rename")
    c.add("mal/inst.pkl", Asm(0).mark().s(cmd).inst("os", "system").stop(), MALICIOUS, "INST")
    a = Asm(2).mark().glob("subprocess", "Popen").mark().s("touch").s(str(c.marker))
    c.add("mal/obj.pkl", a.raw(b"l").obj().stop(), MALICIOUS, "OBJ subprocess.Popen")
    c.add("mal/newobj.pkl", Asm(2).glob("subprocess", "Popen").mark().s("sh").s("-c").s(cmd)
          .raw(b"l").t1().newobj().stop(), MALICIOUS, "NEWOBJ")  # fmt: skip
    a = Asm(2).call("__builtin__", "exec", f"import os; os.system({cmd!r})")
    c.add("mal/builtin_exec.pkl", a.stop(), MALICIOUS, "py2 name mapping exec")
    c.add("mal/eval.pkl", Asm(4).s("builtins").s("eval").sg().mark().s("1+1").tup().reduce().stop(),
          MALICIOUS, "eval")  # fmt: skip
    # GHSA-9gvj-pp9x-gcfr: STACK_GLOBAL operands as protocol-0 STRINGs at index 0.
    c.add("mal/ghsa_9gvj.pkl", Asm(None).string0("os").string0("system").sg().string0(cmd).t1()
          .reduce().stop(), MALICIOUS, "GHSA-9gvj-pp9x-gcfr")  # fmt: skip
    a = Asm(2).glob("pip", "main").mark().s("--version").raw(b"l").t1().reduce()
    c.add("mal/pip_main.pkl", a.stop(), MALICIOUS, "CVE-2025-1716 pip.main")
    c.add("mal/asyncio_sub.pkl", Asm(2).call("asyncio.unix_events", "_UnixSubprocessTransport")
          .stop(), MALICIOUS, "CVE-2025-10157 submodule")  # fmt: skip
    for mod, fn in (("runpy", "_run_code"), ("cProfile", "run"), ("profile", "run"),
                    ("timeit", "timeit"), ("pdb", "run"), ("bdb", "Bdb"), ("trace", "Trace"),
                    ("code", "InteractiveInterpreter"), ("pty", "spawn"), ("ctypes", "CDLL"),
                    ("socket", "create_connection"), ("webbrowser", "open"), ("marshal", "loads"),
                    ("uuid", "_get_command_stdout"), ("numpy.testing._private.utils", "runstring"),
                    ("torch.utils.bottleneck.__main__", "run_cprofile"), ("shutil", "rmtree"),
                    ("_operator", "attrgetter"), ("operator", "methodcaller"),
                    ("idlelib.pyshell", "ModifiedInterpreter"), ("yaml", "unsafe_load"),
                    ("ensurepip", "_run_pip"), ("pydoc", "pipepager"),
                    ("torch._inductor.codecache", "compile_file")):  # fmt: skip
        c.add(
            f"mal/gadget_{mod}.{fn}.pkl", Asm(2).call(mod, fn, cmd).stop(), MALICIOUS, f"{mod}.{fn}"
        )
    # importlib / inspect chains: getattr(import_module('os'), 'system')(cmd)
    a = Asm(2).glob("builtins", "getattr").mark().glob("importlib", "import_module").mark().s("os")
    a.tup().reduce().s("system").tup().reduce().mark().s(cmd).tup().reduce()
    c.add("mal/importlib_chain.pkl", a.stop(), MALICIOUS, "importlib getattr chain")
    a = Asm(2).glob("inspect", "getmodule").mark().glob("os", "path").tup().reduce()
    c.add("mal/inspect_chain.pkl", a.stop(), MALICIOUS, "inspect chain")
    # marshal + FunctionType: FunctionType(marshal.loads(code), {})()
    code = b"\xe3" + b"\0" * 32
    a = Asm(2).glob("types", "FunctionType").mark().glob("marshal", "loads").mark().by(code).tup()
    a.reduce().dict().tup().reduce().empty_tuple().reduce()
    c.add("mal/marshal_function.pkl", a.stop(), MALICIOUS, "marshal + FunctionType")
    # memo confusion: operands fetched from the memo, a slot overwritten before use.
    a = Asm(4).s("collections").memoize().s("OrderedDict").memoize().pop().pop()
    a.s("os").put(0).s("system").put(1).pop().pop().get(0).get(1).sg().mark().s(cmd).tup().reduce()
    c.add("mal/memo_confusion.pkl", a.stop(), MALICIOUS, "memo overwrite + STACK_GLOBAL")
    # nullifAI: payload first, then a stream the loader chokes on.
    c.add(
        "mal/nullifai_broken.pkl",
        c.system()[:-1] + b"\xff\xfe garbage",
        MALICIOUS,
        "nullifAI broken",
    )
    c.add("mal/nullifai_truncated.pkl", c.system()[:-1], MALICIOUS, "nullifAI truncated")
    # data after STOP: a benign pickle, then the payload in a second stream.
    c.add("mal/stacked.pkl", pickle.dumps({"ok": 1}, 2) + c.system(), MALICIOUS, "second stream")
    # nested: pickle.loads(bytes) and the protocol-2 `_codecs.encode(str, 'latin1')` form.
    inner = c.system()
    c.add("mal/nested_loads.pkl", Asm(2).glob("pickle", "loads").mark().by(inner).tup().reduce()
          .stop(), MALICIOUS, "nested pickle.loads")  # fmt: skip
    a = Asm(2).glob("_pickle", "loads").mark().glob("_codecs", "encode").mark()
    a.s(inner.decode("latin-1")).s("latin1").tup().reduce().tup().reduce()
    c.add("mal/nested_codecs.pkl", a.stop(), MALICIOUS, "nested via _codecs.encode")
    c.add("mal/load_from_bytes.pkl", Asm(2).glob("torch.storage", "_load_from_bytes").mark()
          .by(inner).tup().reduce().stop(), MALICIOUS, "torch _load_from_bytes")  # fmt: skip
    # dotted protocol-4 names reaching a gadget through a harmless module.
    c.add("mal/dotted.pkl", Asm(4).s("collections").s("os.system").sg().mark().s(cmd).tup()
          .reduce().stop(), MALICIOUS, "dotted name")  # fmt: skip
    c.add("mal/reconstructor.pkl", Asm(2).glob("copyreg", "_reconstructor").mark()
          .glob("subprocess", "Popen").glob("builtins", "object").none().tup().reduce().stop(),
          MALICIOUS, "copyreg._reconstructor")  # fmt: skip
    # suspicious, not provably malicious
    c.add("sus/unknown_import.pkl", Asm(2).call("mylib.helpers", "Thing", "x").stop(), SUSPICIOUS,
          "non-allow-listed import")  # fmt: skip
    a = Asm(4).glob("builtins", "str").mark().s("os").tup().reduce().s("system").sg()
    c.add("sus/computed_name.pkl", a.mark().s(cmd).tup().reduce().stop(), SUSPICIOUS,
          "STACK_GLOBAL operand from a call", malicious=True)  # fmt: skip
    c.add("sus/build_global.pkl", Asm(2).glob("collections", "OrderedDict").dict().s("x").int(1)
          .setitem().build().stop(), SUSPICIOUS, "BUILD on a class", malicious=True)  # fmt: skip
    c.add("sus/ext.pkl", Asm(2).raw(b"\x82\x05").empty_tuple().reduce().stop(), SUSPICIOUS,
          "EXT1 import", malicious=True)  # fmt: skip
    c.add("sus/broken_benign.pkl", pickle.dumps([1, 2, 3], 2)[:-3], SUSPICIOUS, "truncated pickle",
          malicious=False)  # fmt: skip


def _malicious_formats(c: Corpus) -> None:
    import joblib

    evil = c.system()
    cmd = c.cmd

    class Payload:
        def __reduce__(self) -> tuple[Callable[..., int], tuple[str]]:
            return (os.system, (cmd,))

    buf = io.BytesIO()
    joblib.dump({"w": np.ones(4), "p": Payload()}, buf)
    c.add("mal/model.joblib", buf.getvalue(), MALICIOUS, "joblib")
    c.add("mal/model.zlib.joblib", zlib.compress(buf.getvalue()), MALICIOUS, "joblib zlib")
    c.add("mal/model.gz.joblib", gzip.compress(buf.getvalue()), MALICIOUS, "joblib gzip")
    c.add("mal/model.bz2.joblib", bz2.compress(buf.getvalue()), MALICIOUS, "joblib bz2")
    c.add("mal/model.xz.joblib", lzma.compress(buf.getvalue()), MALICIOUS, "joblib xz")
    buf = io.BytesIO()
    joblib.dump({"w": np.ones(4), "objs": np.array([Payload(), 1], dtype=object)}, buf)
    c.add("mal/object_array.joblib", buf.getvalue(), MALICIOUS, "joblib object array")
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }".ljust(117) + "\n"
    c.add("mal/object.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
          + evil, MALICIOUS, "npy object array")  # fmt: skip
    payload_dict = Asm(2).call("os", "system", cmd)
    c.add("mal/torch_data_pkl.pt", c.torch_zip(c.torch_pkl(payload_dict)).build(), MALICIOUS,
          "torch zip data.pkl")  # fmt: skip
    z = c.torch_zip(c.torch_pkl())
    z.add("archive/extra/config.p", evil)
    c.add("mal/cve_2025_1889.pt", z.build(), MALICIOUS, "CVE-2025-1889 hidden non-standard name")
    c.add("mal/cve_2025_1944.pt", c.torch_zip(evil, local_name="archive/data.pkX").build(),
          MALICIOUS, "CVE-2025-1944 local/central name")  # fmt: skip
    c.add("mal/cve_2025_1945.pt", c.torch_zip(evil, flags=0x1).build(), MALICIOUS,
          "CVE-2025-1945 flag bits")  # fmt: skip
    c.add("mal/cve_2025_10156.pt", c.torch_zip(evil, crc=0x1234).build(), MALICIOUS,
          "CVE-2025-10156 CRC error")  # fmt: skip
    z = c.torch_zip(c.torch_pkl())
    z.members.insert(0, z.members[0].__class__("archive/data.pkl", evil))
    c.add("mal/duplicate_names.pt", z.build(), MALICIOUS, "duplicate member names")
    z = c.torch_zip(c.torch_pkl())
    z.add("archive/hidden.pkl", evil, hidden=True)
    c.add("mal/hidden_local.pt", z.build(), MALICIOUS, "local header missing from directory")
    c.add("mal/deflated.pt", c.torch_zip(evil, deflate=True, root="odd root").build(), MALICIOUS,
          "deflated data.pkl, odd archive root")  # fmt: skip
    c.add("mal/polyglot.pt", ZipSpec(prefix=evil).add("a/data.pkl", c.torch_pkl()).build(),
          MALICIOUS, "pickle+zip polyglot")  # fmt: skip
    c.add("mal/legacy_stacked.pt", pickle.dumps(0x1950A86A20F9469CFC6C, 2) + pickle.dumps(1001, 2)
          + evil, MALICIOUS, "legacy torch stacked pickles")  # fmt: skip
    c.add("mal/keras_lambda.keras", keras_zip(keras_config(lambda_layer=True)), MALICIOUS,
          "Keras Lambda")  # fmt: skip
    c.add("sus/keras_module.keras", keras_zip(keras_config(module="evil_pkg.layers")), SUSPICIOUS,
          "Keras custom module", malicious=True)  # fmt: skip
    c.add("sus/onnx_domain.onnx", onnx_model(domain="com.evil"), SUSPICIOUS, "ONNX custom domain",
          malicious=True)  # fmt: skip
    c.add("sus/onnx_external.onnx", onnx_model(location="../../../etc/passwd"), SUSPICIOUS,
          "ONNX external data escape", malicious=True)  # fmt: skip
    bad = safetensors({"w": (np.ones(4, np.float32), "F32")}, overlap=True)
    c.add("sus/overlap.safetensors", bad, SUSPICIOUS, "safetensors offsets", malicious=True)
    c.add("sus/huge_header.safetensors", struct.pack("<Q", 1 << 40) + b"{}", SUSPICIOUS,
          "safetensors header size", malicious=True)  # fmt: skip
    # containers: bundles, traversal, bombs, depth
    c.add("mal/app.apk", ZipSpec().add("AndroidManifest.xml", b"<manifest/>")
          .add("assets/model.bin", evil).build(), MALICIOUS, "pickle in an APK")  # fmt: skip
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../escape.pkl")
        info.size = len(evil)
        tar.addfile(info, io.BytesIO(evil))
    c.add("mal/traversal.tar.gz", tbuf.getvalue(), MALICIOUS, "tar traversal + payload")
    bomb = ZipSpec().add("zeros.bin", b"\0" * (40 << 20), deflate=True).build()
    c.add("dos/zip_bomb.zip", bomb, UNSCANNABLE, "zip bomb", malicious=True)
    nested = evil
    for depth in range(12):
        nested = ZipSpec().add(f"level{depth}.zip", nested).build()
    c.add("dos/deep.zip", nested, UNSCANNABLE, "nesting bomb", malicious=True)


def safetensors(tensors: dict[str, tuple[np.ndarray, str]], *, overlap: bool = False) -> bytes:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    data = b""
    for name, (arr, dtype) in tensors.items():
        raw = arr.tobytes()
        begin = 0 if overlap else len(data)
        header[name] = {
            "dtype": dtype,
            "shape": list(arr.shape),
            "data_offsets": [begin, begin + len(raw)],
        }
        data += raw
    if overlap:
        header["v"] = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def _pb(field_no: int, value: int | bytes | str) -> bytes:
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)

    if isinstance(value, int):
        return varint(field_no << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(field_no << 3 | 2) + varint(len(data)) + data


def onnx_model(*, domain: str = "", location: str | None = None) -> bytes:
    node = _pb(1, "x") + _pb(2, "y") + _pb(4, "Relu") + (_pb(7, domain) if domain else b"")
    tensor = _pb(1, 2) + _pb(2, 1) + _pb(8, "w")
    if location is not None:
        tensor += _pb(13, _pb(1, "location") + _pb(2, location)) + _pb(14, 1)
    else:
        tensor += _pb(9, np.ones(2, np.float32).tobytes())
    graph = _pb(1, node) + _pb(2, "g") + _pb(5, tensor)
    opset = _pb(8, _pb(1, "") + _pb(2, 17))
    return _pb(1, 8) + _pb(2, "bastion-test") + _pb(7, graph) + opset


def keras_config(*, lambda_layer: bool = False, module: str = "keras.layers") -> dict[str, object]:
    layers: list[dict[str, object]] = [
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": {"batch_shape": [None, 4]},
        },
        {"module": module, "class_name": "Dense", "config": {"units": 2}, "registered_name": None},
    ]
    if lambda_layer:
        function = {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA"}}
        layers.append(
            {"module": "keras.layers", "class_name": "Lambda", "config": {"function": function}}
        )
    return {"module": "keras", "class_name": "Sequential", "config": {"layers": layers}}


def keras_zip(config: dict[str, object]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    return buf.getvalue()


def build(root: Path) -> Corpus:
    c = Corpus(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _benign_sklearn(c)
        _benign_tensors(c)
        _malicious_pickles(c)
        _malicious_formats(c)
    return c
