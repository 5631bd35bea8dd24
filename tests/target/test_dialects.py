"""Request/response mappings for plain JSON endpoints, including top-k answers."""

from __future__ import annotations

import numpy as np
import pytest

from bastion.errors import TargetError
from bastion.target.dialects import JsonDialect, JsonMapping, OipDialect, extract


def test_extract_maps_over_lists() -> None:
    doc = {"data": {"results": [{"cls": "cat"}, {"cls": "dog"}]}}
    assert extract(doc, "data.results[].cls") == ["cat", "dog"]
    with pytest.raises(TargetError, match="no field"):
        extract(doc, "data.missing")


def test_custom_mapping_with_template_and_top_k_dicts() -> None:
    mapping = JsonMapping(
        input_field="payload.rows",
        label_field="out[].top",
        scores_field="out[].probs",
        template=(("model", "m1"),),
    )
    dialect = JsonDialect("http://x/score", mapping, classes=("cat", "dog", "eel"))
    assert dialect.encode(np.ones((1, 2))) == {"model": "m1", "payload": {"rows": [[1.0, 1.0]]}}
    body = {"out": [{"top": "dog", "probs": {"dog": 0.9}}, {"top": "eel", "probs": {"eel": 0.6}}]}
    labels, scores = dialect.decode(body, 2)
    assert labels.tolist() == [1, 2]
    assert scores is not None and np.isnan(scores).sum() == 4 and scores[0, 1] == 0.9


def test_oip_encodes_flat_tensors_with_shape() -> None:
    dialect = OipDialect("http://x", "m")
    dialect.apply_metadata(
        {"inputs": [{"name": "pixels", "datatype": "INT32", "shape": [-1, 2, 2]}]}
    )
    body = dialect.encode(np.arange(8).reshape(2, 2, 2))
    assert body["inputs"][0] == {
        "name": "pixels",
        "shape": [2, 2, 2],
        "datatype": "INT32",
        "data": list(range(8)),
    }
    assert dialect.input_shape == (2, 2)
    with pytest.raises(TargetError, match="outputs"):
        dialect.decode({"nothing": 1}, 1)
