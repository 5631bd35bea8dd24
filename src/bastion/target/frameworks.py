"""In-process targets for models held by other frameworks: torch, ONNX Runtime, ART.

Each imports its framework only when built (extras `torch`, `onnx`), and takes
a model the caller already holds or a file in a format that cannot execute
code when read (ONNX is a protobuf graph). bastion never unpickles a model to
query it; scan artifacts with `bastion scan` before loading them yourself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import TargetError, UsageError
from bastion.target.base import OutputKind
from bastion.target.local import CallableTarget

__all__ = ["OnnxTarget", "TorchTarget", "from_art"]


def _softmax(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    out: npt.NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return out


class TorchTarget(CallableTarget):
    """A `torch.nn.Module` returning logits; exposes softmax scores unless output is LOGITS."""

    def __init__(self, module: Any, *, output: OutputKind = OutputKind.SCORES, **kw: Any) -> None:
        try:
            import torch
        except ImportError as exc:
            raise UsageError(
                "TorchTarget needs torch", hint="pip install 'bastion-ml[torch]'"
            ) from exc
        module.eval()

        def forward(x: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
            with torch.no_grad():
                logits = module(torch.as_tensor(np.asarray(x), dtype=torch.float32))
            z = logits.detach().cpu().numpy().astype(np.float64)
            return z if output is OutputKind.LOGITS else _softmax(z)

        kw.setdefault("name", type(module).__name__)
        super().__init__(forward, output=output, **kw)


class OnnxTarget(CallableTarget):
    """An ONNX model run by onnxruntime on CPU; picks the (n, classes) float output."""

    def __init__(
        self,
        model: str | Path | bytes,
        *,
        output: OutputKind = OutputKind.SCORES,
        scores_output: str | None = None,
        **kw: Any,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise UsageError(
                "OnnxTarget needs onnxruntime", hint="pip install 'bastion-ml[onnx]'"
            ) from exc
        source = model if isinstance(model, bytes) else str(model)
        try:
            session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise TargetError(f"onnxruntime cannot open the model: {exc}") from exc
        first = session.get_inputs()[0]
        dtype = np.float64 if "double" in str(first.type) else np.float32
        names = [o.name for o in session.get_outputs()]

        def run(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
            outs = session.run(None, {first.name: np.asarray(x, dtype=dtype)})
            by_name = dict(zip(names, outs, strict=True))
            if scores_output is not None:
                return np.asarray(by_name[scores_output])
            for value in outs:
                arr = np.asarray(value)
                if arr.ndim == 2 and arr.dtype.kind == "f":
                    return arr
            return np.asarray(outs[0])

        shape = tuple(d for d in first.shape[1:] if isinstance(d, int)) or None
        kw.setdefault("name", Path(source).name if isinstance(source, str) else "onnx-model")
        kw.setdefault("input_shape", shape)
        super().__init__(run, output=output, **kw)


def from_art(
    estimator: Any, *, output: OutputKind = OutputKind.SCORES, **kw: Any
) -> CallableTarget:
    """An Adversarial Robustness Toolbox classifier (anything with ART's predict/attributes)."""
    if not callable(getattr(estimator, "predict", None)):
        raise UsageError(f"{type(estimator).__name__} has no predict(); not an ART classifier")
    clip = getattr(estimator, "clip_values", None)
    shape = getattr(estimator, "input_shape", None)
    return CallableTarget(
        estimator.predict,
        output=output,
        name=kw.pop("name", type(estimator).__name__),
        n_classes=getattr(estimator, "nb_classes", None),
        input_shape=tuple(shape) if shape is not None else None,
        bounds=(float(clip[0]), float(clip[1])) if clip is not None else None,
        **kw,
    )
