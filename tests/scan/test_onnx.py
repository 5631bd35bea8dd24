"""ONNX models written by the onnx library itself, read by bastion's own protobuf walker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bastion.scan import Scanner, Verdict

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _model(*, domain: str = "", with_subgraph: bool = False) -> object:
    weight = numpy_helper.from_array(np.ones((2, 2), np.float32), name="w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"])]
    if domain:
        nodes.append(helper.make_node("FastGelu", ["h"], ["y"], domain=domain))
    elif with_subgraph:
        then = helper.make_graph(
            [helper.make_node("Relu", ["h"], ["t"], domain="com.hidden")],
            "then",
            [],
            [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 2])],
        )
        cond = helper.make_tensor("c", TensorProto.BOOL, [], [True])
        nodes.append(helper.make_node("Constant", [], ["cond"], value=cond))
        nodes.append(helper.make_node("If", ["cond"], ["y"], then_branch=then, else_branch=then))
    else:
        nodes.append(helper.make_node("Relu", ["h"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [weight],
    )
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets)


def _save(model: object, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def test_plain_model_is_clean(tmp_path: Path) -> None:
    result = Scanner().scan_file(_save(_model(), tmp_path / "m.onnx"))
    assert result.verdict is Verdict.CLEAN and result.artifacts[0].format == "onnx"


def test_custom_domain_is_suspicious(tmp_path: Path) -> None:
    result = Scanner().scan_file(_save(_model(domain="com.evil.ops"), tmp_path / "m.onnx"))
    assert result.verdict is Verdict.SUSPICIOUS
    assert {i.evidence["domain"] for i in result.issues} == {"com.evil.ops"}


def test_custom_domain_inside_a_subgraph_is_found(tmp_path: Path) -> None:
    result = Scanner().scan_file(_save(_model(with_subgraph=True), tmp_path / "m.onnx"))
    assert [i.evidence["domain"] for i in result.issues] == ["com.hidden"]


def test_external_data_escaping_the_directory(tmp_path: Path) -> None:
    model = _model()
    weight = model.graph.initializer[0]  # type: ignore[attr-defined]
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "../../secrets/key.bin"
    result = Scanner().scan_file(_save(model, tmp_path / "m.onnx"))
    assert result.verdict is Verdict.SUSPICIOUS
    assert [i.rule for i in result.issues] == ["S306"]


def test_external_data_inside_the_directory_is_fine(tmp_path: Path) -> None:
    model = _model()
    onnx.save(
        model,
        str(tmp_path / "m.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    assert Scanner().scan_file(tmp_path / "m.onnx").verdict is Verdict.CLEAN
