"""Each built-in policy, through the in-process adapter around a real scikit-learn model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from bastion.guard import Guard, load_config
from bastion.guard.adapters.wrap import GuardDenied, GuardedModel, wrap
from bastion.guard.policies.detection import Evidence, Observation
from bastion.guard.stores.base import Store
from bastion.registry import registry
from tests.guard.conftest import key_entry, token

X = np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)


def borderline_virginica(model: Any) -> np.ndarray:
    """An input the model calls virginica with low confidence (the review-queue case)."""
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    a, b = x[y == 1].mean(0), x[y == 2].mean(0)
    for t in np.linspace(0.3, 0.9, 121):
        row = (a + t * (b - a)).reshape(1, -1)
        p = model.predict_proba(row)[0]
        if p.argmax() == 2 and p.max() < 0.6:
            return row.astype(np.float32)
    raise AssertionError("no borderline input found")


_OPEN: list[Guard] = []


@pytest.fixture(autouse=True)
def _close_guards() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def _guarded(config: Path, model: Any) -> tuple[Guard, GuardedModel]:
    guard = Guard(load_config(config))
    _OPEN.append(guard)
    return guard, wrap(guard, model.predict_proba)


def test_unauthenticated_and_bad_keys_are_refused(write_config, model) -> None:
    guard, g = _guarded(write_config(), model)
    with pytest.raises(GuardDenied) as err:
        g(X)
    assert err.value.deny.status == 401 and err.value.deny.reason == "unauthenticated"
    with pytest.raises(GuardDenied) as err:
        g(X, api_key="alice01.wrong-secret")
    assert err.value.deny.reason == "invalid_key"
    with pytest.raises(GuardDenied) as err:
        g(X, api_key=token("rita"))  # a reviewer key cannot predict
    assert err.value.deny.status == 403
    assert g(X, api_key=token("alice")).labels.tolist() == [0]
    _OPEN.remove(guard)
    guard.close()


def test_revoked_key_is_refused_without_restart(write_config, keys_file: Path, model) -> None:
    guard, g = _guarded(write_config(), model)
    g(X, api_key=token("bob"))
    entries = [key_entry(p) for p in ("alice", "bob")]
    entries[1]["revoked"] = True
    keys_file.write_text(yaml.safe_dump({"keys": entries}))
    st = keys_file.stat()
    os.utime(keys_file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(GuardDenied) as err:
        g(X, api_key=token("bob"))
    assert err.value.deny.reason == "revoked_key"
    g(X, api_key=token("alice"))
    _OPEN.remove(guard)
    guard.close()


def test_quota_is_per_principal_with_retry_after(write_config, model) -> None:
    guard, g = _guarded(write_config(), model)
    for _ in range(5):
        g(X, api_key=token("alice"))
    with pytest.raises(GuardDenied) as err:
        g(X, api_key=token("alice"))
    deny = err.value.deny
    assert deny.status == 429 and deny.reason == "rate_limited"
    assert 1 <= int(deny.headers["Retry-After"]) <= 60
    assert deny.headers["RateLimit-Remaining"] == "0"
    g(X, api_key=token("bob"))  # another principal still passes
    _OPEN.remove(guard)
    guard.close()


def test_quota_answers_alike_on_every_store(write_config, store: Store) -> None:
    """The memory store counts all windows in one call; its answers are the get/incr ones."""
    from bastion.guard.policies.quota import QuotaPolicy
    from bastion.guard.policy import GuardEnv
    from bastion.guard.request import Deny, Principal, Request

    options = QuotaPolicy.Options.model_validate(
        {"per_principal": ["5/minute", "100/day"], "global": ["7/minute"]}
    )
    quota = QuotaPolicy(options, GuardEnv(load_config(write_config()), store))

    def ask(who: str, rows: int) -> tuple[Any, ...]:
        request = Request({"x": np.zeros((rows, 4))}, principal=Principal(who))
        v = quota.on_request(request)
        if isinstance(v, Deny):
            return v.status, v.reason, v.body.get("scope"), v.headers.get("RateLimit-Remaining")
        h = v.headers
        assert 0 <= int(h["RateLimit-Reset"]) <= 60
        return 200, h["RateLimit-Limit"], h["RateLimit-Remaining"]

    assert [
        ask("alice", 2),
        ask("alice", 6),  # can never fit 5/minute: 413, and nothing is counted
        ask("alice", 3),
        ask("alice", 1),
        ask("bob", 2),
        ask("bob", 1),
    ] == [
        (200, "5", "3"),
        (413, "batch_exceeds_limit", None, None),
        (200, "5", "0"),
        (429, "rate_limited", "principal", "0"),
        (200, "5", "3"),
        (429, "rate_limited", "global", "0"),
    ]


def test_quota_counts_rows_and_global_limit(write_config, tmp_path: Path, model) -> None:
    cfg = yaml.safe_load(write_config().read_text())
    cfg["policies"][1] = {"kind": "quota", "per_principal": ["10/minute"], "global": ["12/minute"]}
    path = tmp_path / "g2.yaml"
    path.write_text(yaml.safe_dump(cfg))
    guard, g = _guarded(path, model)
    g(np.repeat(X, 8, axis=0), api_key=token("alice"))
    with pytest.raises(GuardDenied):
        g(np.repeat(X, 3, axis=0), api_key=token("alice"))  # 8 + 3 rows > 10
    g(np.repeat(X, 4, axis=0), api_key=token("bob"))
    with pytest.raises(GuardDenied) as err:
        g(X, api_key=token("bob"))  # 8 + 4 + 1 > 12 overall
    assert "global" in err.value.deny.message
    _OPEN.remove(guard)
    guard.close()


@pytest.mark.parametrize(
    ("inputs", "problem"),
    [
        (np.ones((1, 3), dtype=np.float32), "shape"),
        (np.array([[1.0, np.nan, 1.0, 1.0]]), "non_finite"),
        (np.array([[1.0, 99.0, 1.0, 1.0]]), "range"),
        (np.array([["a", "b", "c", "d"]]), "dtype"),
    ],
)
def test_invalid_inputs_are_refused_with_the_problem(write_config, model, inputs, problem) -> None:
    guard, g = _guarded(write_config(), model)
    with pytest.raises(GuardDenied) as err:
        g(inputs, api_key=token("alice"))
    assert err.value.deny.status == 422
    assert err.value.deny.body["problem"] == problem
    _OPEN.remove(guard)
    guard.close()


def test_too_many_rows_is_413(write_config, model) -> None:
    guard, g = _guarded(write_config(), model)
    with pytest.raises(GuardDenied) as err:
        g(np.repeat(X, 17, axis=0), api_key=token("alice"))
    assert err.value.deny.status == 413
    _OPEN.remove(guard)
    guard.close()


def test_output_is_minimised_per_scope(write_config, model) -> None:
    guard, g = _guarded(write_config(), model)
    x = np.array([[6.0, 2.9, 4.5, 1.5]], dtype=np.float32)
    full = model.predict_proba(x)[0]
    top = g(x, api_key=token("alice"))
    assert top.top_k == 1 and top.scores is not None
    assert np.isnan(top.scores).sum() == 2  # only the best class is returned
    assert np.nanmax(top.scores) == pytest.approx(round(full.max(), 1))
    rich = g(x, api_key=token("carol"))  # the 'scores' scope sees all, rounded to 2
    assert rich.scores is not None
    np.testing.assert_allclose(rich.scores[0], np.round(full, 2))
    _OPEN.remove(guard)
    guard.close()


def test_noise_keeps_the_label_and_can_be_limited_to_low_confidence(model) -> None:
    from bastion.guard.policies.minimise import OutputRule, minimise
    from bastion.guard.request import Prediction

    rng = np.random.default_rng(0)
    scores = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25]] * 50)
    pred = Prediction.from_scores(scores)
    noisy = minimise(pred, OutputRule(mode="scores", noise=0.2), rng)
    assert noisy.scores is not None
    assert (noisy.scores.argmax(1) == pred.labels).all()
    assert not np.allclose(noisy.scores, scores)
    low_only = minimise(pred, OutputRule(mode="scores", noise=0.2, noise_below=0.6), rng)
    assert low_only.scores is not None
    np.testing.assert_array_equal(low_only.scores[0::2], scores[0::2])
    assert not np.allclose(low_only.scores[1::2], scores[1::2])


def test_low_confidence_high_impact_goes_to_review(write_config, model) -> None:
    guard, g = _guarded(write_config(), model)
    x = borderline_virginica(model)
    with pytest.raises(GuardDenied) as err:
        g(x, api_key=token("alice"))
    deny = err.value.deny
    assert deny.status == 202 and deny.reason == "pending_review"
    case = guard.store.get_case(deny.body["case"])
    assert case is not None and case.principal == "alice" and case.status == "pending"
    assert case.model_output["labels"] == [2]
    # a confident answer of the same class is not held
    assert g(np.array([[7.7, 3.0, 6.1, 2.3]], np.float32), api_key=token("alice")).labels[0] == 2
    _OPEN.remove(guard)
    guard.close()


def test_fallback_rule_replaces_the_unsure_answer(write_config, tmp_path: Path, model) -> None:
    cfg = yaml.safe_load(write_config().read_text())
    cfg["policies"][3] = {
        "kind": "decision",
        "confidence_below": 0.6,
        "route": "fallback",
        "fallback": {"input": "input-0", "feature": 2, "threshold": 4.9, "above": 2, "below": 1},
    }
    path = tmp_path / "g3.yaml"
    path.write_text(yaml.safe_dump(cfg))
    guard, g = _guarded(path, model)
    x = borderline_virginica(model)
    out = g(x, api_key=token("alice"))
    assert out.scores is None
    assert out.labels[0] == (2 if x[0, 2] > 4.9 else 1)
    _OPEN.remove(guard)
    guard.close()
    records = [yaml.safe_load(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert records[-1]["decision"] == "fallback"


class RepeatDetector:
    """Test detector: one unit of evidence per exact repeat of an earlier query."""

    name = "repeats"

    def __init__(self, options: dict[str, Any], env: Any) -> None:
        self.window = int(options.get("window", 50))

    def observe(self, obs: Observation, store: Store) -> Evidence | None:
        key = f"repeats:{obs.principal}"
        digest = b"".join(np.ascontiguousarray(a).tobytes() for a in obs.inputs.values())
        seen = digest in store.read_history(key)
        store.append_history(key, digest, self.window)
        return Evidence(1.0, "exact_repeat") if seen else None


def _with_detection(
    write_config: Any, tmp_path: Path, model: Any, detection: dict[str, Any], name: str
) -> tuple[Guard, GuardedModel]:
    """The base config with a generous quota and `detection` inserted after validation."""
    registry("detectors").register("repeats", RepeatDetector)
    cfg = yaml.safe_load(write_config().read_text())
    cfg["policies"][1] = {"kind": "quota", "per_principal": ["1000/minute"]}
    cfg["policies"].insert(3, {"kind": "detection", **detection})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return _guarded(path, model)


def test_detection_escalates_per_principal_without_a_per_query_oracle(
    write_config, tmp_path: Path, model
) -> None:
    guard, g = _with_detection(
        write_config,
        tmp_path,
        model,
        {
            "detectors": [{"kind": "repeats", "window": 20}],
            "actions": [{"at": 2, "action": "label_only"}, {"at": 4, "action": "block"}],
        },
        "g4",
    )
    carol = token("carol")
    x = np.array([[6.0, 2.9, 4.5, 1.5]], dtype=np.float32)
    answers = [g(x, api_key=carol) for _ in range(3)]
    # the query that crosses the threshold is answered as usual ...
    assert all(a.scores is not None for a in answers)
    # ... the principal is degraded from its next request on
    assert g(x, api_key=carol).scores is None
    assert g(x, api_key=carol).scores is None  # evidence reaches 4 with this query
    with pytest.raises(GuardDenied) as err:
        g(x, api_key=carol)
    assert err.value.deny.reason == "principal_blocked"
    assert g(x, api_key=token("alice")).labels.size == 1  # others unaffected
    state = guard.store.get_state("carol")
    assert state.total >= 4 and state.active_action() == "block"
    _OPEN.remove(guard)
    guard.close()
    text = (tmp_path / "audit.jsonl").read_text()
    assert "detection:evidence=repeats:exact_repeat" in text


def test_sqlite_restart_keeps_quotas_reviews_and_chain(write_config, model, tmp_path) -> None:
    from bastion.guard.verification import verify_log

    config = write_config()
    guard, g = _guarded(config, model)
    for _ in range(5):
        g(X, api_key=token("alice"))
    with pytest.raises(GuardDenied):
        g(borderline_virginica(model), api_key=token("bob"))
    _OPEN.remove(guard)
    guard.close()
    guard, g = _guarded(config, model)  # restart
    with pytest.raises(GuardDenied) as err:
        g(X, api_key=token("alice"))
    assert err.value.deny.status == 429
    assert len(guard.store.list_cases("pending")) == 1
    _OPEN.remove(guard)
    guard.close()
    v = verify_log([tmp_path / "audit.jsonl"])
    assert v.ok and v.records == 2 + 7  # two start records, seven decisions


def test_every_request_is_one_audit_record(write_config, model, tmp_path) -> None:
    guard, g = _guarded(write_config(), model)
    g(X, api_key=token("alice"))
    with pytest.raises(GuardDenied):
        g(X)
    _OPEN.remove(guard)
    guard.close()
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    recs = [yaml.safe_load(x) for x in lines]
    assert [r["event"] for r in recs] == ["start", "decision", "decision"]
    assert recs[1]["principal"] == "alice" and recs[1]["decision"] == "allow"
    assert recs[2]["decision"] == "deny" and recs[2]["reasons"] == ["api_key:unauthenticated"]
    assert len(recs[1]["digest"]) == 64 and recs[1]["guard_ms"] >= 0


def test_review_and_throttle_actions_hit_only_the_suspect(
    write_config, tmp_path: Path, model
) -> None:
    guard, g = _with_detection(
        write_config,
        tmp_path,
        model,
        {
            "detectors": [{"kind": "repeats"}],
            "throttle": "1/minute",
            "actions": [{"at": 1, "action": "review"}, {"at": 2, "action": "throttle"}],
        },
        "g5",
    )
    alice = token("alice")
    for _ in range(2):
        g(X, api_key=alice)
    assert guard.store.get_state("alice").active_action() == "review"
    [case] = guard.store.list_cases("pending")
    assert case.principal == "alice" and case.reason == "detection"
    assert case.model_output["evidence"] == {"repeats": 1.0}
    assert case.model_output["signals"] == ["repeats:exact_repeat"]
    g(X, api_key=alice)  # evidence 2: throttled from the next request on
    g(X, api_key=alice)  # the one request the throttle window allows
    with pytest.raises(GuardDenied) as err:
        g(X, api_key=alice)
    assert err.value.deny.status == 429
    for _ in range(3):
        g(X, api_key=token("bob"))


def _detection_config(write_config: Any, path: Path, detection: dict[str, Any]) -> Path:
    """The test guard config with a generous quota, full scores for the `scores` scope, and
    `detection` before output minimisation, written to `path`."""
    cfg = yaml.safe_load(write_config().read_text())
    cfg["policies"][1] = {"kind": "quota", "per_principal": ["1000/minute"]}
    cfg["policies"][4]["scopes"] = {"scores": {"mode": "scores", "decimals": 6}}
    cfg["policies"].insert(3, detection)
    path.write_text(yaml.safe_dump(cfg))
    return path


class BurstDetector:
    """Test detector: evidence 5 on the second query a principal sends, nothing otherwise."""

    name = "burst"

    def __init__(self, options: dict[str, Any], env: Any) -> None:
        self.seen: dict[str, int] = {}

    def observe(self, obs: Observation, store: Store) -> Evidence | None:
        n = self.seen[obs.principal] = self.seen.get(obs.principal, 0) + 1
        return Evidence(5.0, "burst") if n == 2 else None


def test_noise_action_keeps_labels_and_review_opens_even_when_evidence_jumps_past_it(
    write_config, tmp_path: Path, model
) -> None:
    registry("detectors").register("burst", BurstDetector)
    registry("detectors").register("repeats", RepeatDetector)
    detection = {
        "kind": "detection",
        "detectors": [{"kind": "burst"}],
        "noise": 0.2,
        "seed": 0,
        "actions": [
            {"at": 1, "action": "review"},
            {"at": 3, "action": "noise"},
            {"at": 50, "action": "label_only"},
        ],
    }
    guard, g = _guarded(_detection_config(write_config, tmp_path / "g6.yaml", detection), model)
    carol = token("carol")  # carol's scope gets full scores
    truth = model.predict_proba(X)[0]
    first, second = g(X, api_key=carol), g(X, api_key=carol)
    # the query that raised the evidence is answered exactly as before
    assert np.allclose(first.scores[0], truth, atol=1e-6)
    assert np.allclose(second.scores[0], truth, atol=1e-6)
    # evidence jumped 0 -> 5, past review to noise: one case is open all the same
    [case] = guard.store.list_cases("pending")
    assert case.principal == "carol" and case.model_output["action"] == "noise"
    noisy = [g(X, api_key=carol) for _ in range(5)]
    assert all(int(a.labels[0]) == int(truth.argmax()) for a in noisy)  # same label
    assert all(not np.allclose(a.scores[0], truth, atol=1e-3) for a in noisy)
    assert len({tuple(np.round(a.scores[0], 6)) for a in noisy}) == 5  # fresh noise each time
    assert len(guard.store.list_cases("pending")) == 1  # no case per query
    assert np.nanmax(g(X, api_key=token("alice")).scores[0]) == round(truth.max(), 1)
    _OPEN.remove(guard)
    guard.close()
    text = (tmp_path / "audit.jsonl").read_text()
    assert "detection:noise" in text


def test_a_degraded_principal_stays_degraded_when_throttled(
    write_config, tmp_path: Path, model
) -> None:
    guard, g = _with_detection(
        write_config,
        tmp_path,
        model,
        {
            "detectors": [{"kind": "repeats"}],
            "throttle": "100/minute",
            "actions": [{"at": 1, "action": "label_only"}, {"at": 2, "action": "throttle"}],
        },
        "g7",
    )
    carol = token("carol")
    for _ in range(3):
        g(X, api_key=carol)
    assert guard.store.get_state("carol").active_action() == "throttle"
    assert g(X, api_key=carol).scores is None  # levels are cumulative


def test_a_failing_model_is_audited_and_raised(write_config, model, tmp_path) -> None:
    def broken(x: np.ndarray) -> np.ndarray:
        raise RuntimeError("weights missing")

    guard = Guard(load_config(write_config()))
    _OPEN.append(guard)
    with pytest.raises(RuntimeError, match="weights missing"):
        wrap(guard, broken)(X, api_key=token("alice"))
    last = yaml.safe_load((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert last["decision"] == "error" and last["reasons"] == ["model:model_error"]


def test_small_score_paths_answer_exactly_as_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Top-1 masking with rounding and top-k ranking take a plain-Python path for small
    matrices; its answers are bit for bit the numpy path's (ties, NaN, signed zeros)."""
    from bastion.guard.adapters import codec
    from bastion.guard.policies import minimise as m
    from bastion.guard.request import Prediction

    rng = np.random.default_rng(7)
    gen = np.random.default_rng(0)
    for trial in range(600):
        n, c = int(rng.integers(1, 5)), int(rng.integers(1, 8))
        scores = [
            rng.random((n, c)),
            rng.normal(0, 5, (n, c)),
            np.round(rng.random((n, c)), 3) + 0.0005,  # halfway cases for rounding
            rng.normal(0, 1e-3, (n, c)),  # rounds to signed zeros
        ][trial % 4]
        if trial % 10 == 0:
            scores[0, 0] = np.nan
        labels = rng.integers(-c, c, n).astype(np.int64)
        decimals = [None, 0, 1, 2, 3, 8][trial % 6]
        rule = m.OutputRule(mode="top_k", k=1, decimals=decimals)
        pred = Prediction(labels, scores)
        fast = m.minimise(pred, rule, gen).scores
        with monkeypatch.context() as patch:
            patch.setattr(m, "_SMALL", -1)
            slow = m.minimise(pred, rule, gen).scores
        assert fast is not None and slow is not None
        assert fast.tobytes() == slow.tobytes(), (scores, labels, decimals)
        ranked = Prediction(labels, np.round(scores, 1), top_k=int(rng.integers(1, c + 1)))
        fast_k = codec.Codec._top_k(ranked)
        with monkeypatch.context() as patch:
            patch.setattr(codec, "_SMALL", -1)
            slow_k = codec.Codec._top_k(ranked)
        assert fast_k[0] == slow_k[0]
        np.testing.assert_array_equal(np.array(fast_k[1]), np.array(slow_k[1]))


def test_small_input_bounds_and_confidence_match_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Input bounds and the lowest confidence also skip numpy for small arrays: same values,
    NaN reported as NaN whatever its position, infinities and huge values included."""
    from bastion.guard.policies import validation
    from bastion.guard.request import Prediction

    rng = np.random.default_rng(3)
    specials = [np.nan, np.inf, -np.inf, 1e308, -1e308, 0.0]
    for trial in range(600):
        dtype = [np.float32, np.float64, np.int64, np.bool_][trial % 4]
        arr = (rng.normal(0, 100, (int(rng.integers(1, 4)), 4))).astype(np.float64)
        if trial % 3 == 0:
            arr.flat[int(rng.integers(0, arr.size))] = specials[trial % len(specials)]
        with np.errstate(all="ignore"):
            arr = arr.astype(dtype) if dtype is not np.int64 else np.nan_to_num(arr).astype(dtype)
        fast = validation._bounds(arr)
        with monkeypatch.context() as patch:
            patch.setattr(validation, "_SMALL", -1)
            slow = validation._bounds(arr)
        np.testing.assert_array_equal(np.array(fast), np.array(slow))
        if dtype is np.float64:
            pred = Prediction(np.zeros(len(arr), dtype=np.int64), arr)
            conf = pred.confidence()
            assert conf is not None
            np.testing.assert_array_equal(pred.lowest_confidence(), float(conf.min()))


class MovedDetector:
    """Test detector: on a principal's second query, immediate evidence of `amount`."""

    name = "moved"

    def __init__(self, options: dict[str, Any], env: Any) -> None:
        self.amount = float(options.get("amount", 6.0))
        self.seen: dict[str, int] = {}

    def observe(self, obs: Observation, store: Store) -> Evidence | None:
        n = self.seen[obs.principal] = self.seen.get(obs.principal, 0) + 1
        return Evidence(self.amount, "moved_account", immediate=True) if n == 2 else None


@pytest.mark.parametrize(("amount", "action"), [(6.0, "label_only"), (3.0, "noise")])
def test_immediate_evidence_degrades_the_answer_that_raised_it(
    write_config, tmp_path: Path, model, amount: float, action: str
) -> None:
    """Evidence that a caught campaign moved here is acted on at once: the answer that raised
    it already comes with labels only (or noisy scores), where other evidence waits for the
    next request."""
    registry("detectors").register("moved", MovedDetector)
    detection = {
        "kind": "detection",
        "detectors": [{"kind": "moved", "amount": amount}],
        "seed": 0,
        "actions": [{"at": 2, "action": "noise"}, {"at": 5, "action": "label_only"}],
    }
    guard, g = _guarded(_detection_config(write_config, tmp_path / "g7.yaml", detection), model)
    carol = token("carol")
    truth = model.predict_proba(X)[0]
    first, second, third = (g(X, api_key=carol) for _ in range(3))
    assert np.allclose(first.scores[0], truth, atol=1e-6)  # before any evidence: exact
    for answer in (second, third):  # from the answer that raised it on
        assert int(answer.labels[0]) == int(truth.argmax())
        if action == "label_only":
            assert answer.scores is None
        else:
            assert answer.scores is not None
            assert not np.allclose(answer.scores[0], truth, atol=1e-3)
    assert guard.store.get_state("carol").active_action() == action
    _OPEN.remove(guard)
    guard.close()
    audit = (tmp_path / "audit.jsonl").read_text()
    assert "detection:evidence=moved:moved_account" in audit
