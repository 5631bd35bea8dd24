"""guard.yaml is validated strictly, and every error names the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.errors import ConfigError
from bastion.guard import Guard, load_config, parse_config


def test_valid_config_builds_the_policies_in_order(write_config, tmp_path: Path) -> None:
    guard = Guard(load_config(write_config()))
    assert [p.name for p in guard.policies] == [
        "api_key",
        "quota",
        "input_validation",
        "decision",
        "output_minimisation",
    ]
    assert guard.store.name == "sqlite"
    guard.close()


def test_unknown_top_level_key_is_reported_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "guard.yaml"
    path.write_text("version: 1\nmodel:\n  name: m\n  protocl: oip\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.line == 4
    assert err.value.field == "model.protocl"
    assert f"{path}:4:" in str(err.value)


def test_policy_option_error_points_into_the_policies_list(tmp_path: Path) -> None:
    text = (
        "store: {kind: memory}\n"
        "audit: {enabled: false}\n"
        "policies:\n"
        "  - kind: quota\n"
        "    per_principal: ['10/second']\n"
        "  - kind: input_validation\n"
        "    max_byte: 10\n"
    )
    with pytest.raises(ConfigError) as err:
        Guard(parse_config(text, tmp_path / "g.yaml"))
    assert err.value.line == 7
    assert err.value.field == "policies.1.max_byte"


def test_bad_rate_limit_text_is_a_config_error(tmp_path: Path) -> None:
    text = (
        "store: {kind: memory}\naudit: {enabled: false}\npolicies:\n"
        "  - kind: quota\n    per_principal: ['ten per fortnight']\n"
    )
    with pytest.raises(ConfigError) as err:
        Guard(parse_config(text, tmp_path / "g.yaml"))
    assert err.value.line == 5
    assert "ten per fortnight" in str(err.value)


def test_unknown_policy_kind_names_the_known_ones(tmp_path: Path) -> None:
    text = "store: {kind: memory}\naudit: {enabled: false}\npolicies:\n  - kind: firewall\n"
    with pytest.raises(ConfigError, match="api_key"):
        Guard(parse_config(text))


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("model:\n  name: [unclosed\n", tmp_path / "g.yaml")
    assert err.value.line is not None and err.value.line >= 2


def test_model_whose_digest_does_not_match_is_refused(tmp_path: Path) -> None:
    from bastion.errors import IntegrityError

    artifact = tmp_path / "model.onnx"
    artifact.write_bytes(b"weights v2")
    text = (
        "store: {kind: memory}\naudit: {enabled: false}\n"
        f"model:\n  artifact: {{path: {artifact}, sha256: '{'ab' * 32}'}}\n"
    )
    with pytest.raises(IntegrityError, match="sha256"):
        Guard(parse_config(text))
    import hashlib

    good = hashlib.sha256(b"weights v2").hexdigest()
    Guard(parse_config(text.replace("ab" * 32, good))).close()
