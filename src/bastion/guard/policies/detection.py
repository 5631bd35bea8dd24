"""The detection hook: stateful detectors accumulate evidence per principal; actions follow.

A detector (registry capability `detectors`) observes each answered query and
may return evidence. Evidence adds up per principal in the store, and crossing
a configured level switches that principal to an action — flag, a review case
for a human, noisy scores, label-only answers, throttling, or a block — from
its next request on. Levels are cumulative: a principal escalated to a
stricter action keeps every milder configured one (a throttled principal that
was degraded to labels does not get its scores back). Nothing changes the
answer to the query that raised the evidence, so an adaptive attacker does not
get a per-query "you were detected" signal to tune against; noise keeps the
label, so the answers do not change shape either.

One exception, which a detector asks for (`Evidence.immediate`): evidence
that a campaign already caught on another account has moved to this one. Its
answer is degraded at once (noise or labels only; a block or throttle still
starts with the next request). A fresh account's first answer would otherwise
always carry exact scores, and an attacker holding many accounts gets one
scored answer per account; what it learns instead — this continuation was
recognised — it knew already when its previous account lost its scores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from limits.errors import StorageError
from limits.strategies import FixedWindowRateLimiter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bastion.errors import StoreError
from bastion.guard.config import config_error
from bastion.guard.metrics import DETECTIONS
from bastion.guard.policies.minimise import DEGRADE_KEY, OutputRule, minimise
from bastion.guard.policies.quota import parse_limit
from bastion.guard.policy import FailMode, GuardEnv, PolicyBase, PolicyOptions, store_unavailable
from bastion.guard.request import Allow, Deny, Prediction, Request, Transform, Verdict
from bastion.guard.stores.base import PrincipalState, ReviewCase, Store
from bastion.registry import registry

__all__ = [
    "ACTIONS",
    "GRADED_ACTIONS",
    "NOISE_KEY",
    "DetectionPolicy",
    "Detector",
    "Evidence",
    "Observation",
]

ACTIONS = ("flag", "review", "noise", "label_only", "throttle", "block")  # mildest to strictest
Action = Literal["flag", "review", "noise", "label_only", "throttle", "block"]
NOISE_KEY = "bastion.detection_noise"
_NOW_KEY = "bastion.detection_now"  # an action applied to the answer that raised it

# The graded response guard plans write and `bastion detect eval` measures (one list, so the
# evaluation's figures are those of the configuration users get). From the first evidence a
# principal's scores are noisy (labels intact: a falsely flagged user still gets every answer
# right); an attack whose campaign keeps adding evidence gets labels only two units later, and
# is blocked at 12. See docs/detect.md, "Actions", for how the levels were chosen.
GRADED_ACTIONS: tuple[dict[str, Any], ...] = (
    {"at": 2.0, "action": "flag"},
    {"at": 2.0, "action": "noise"},
    {"at": 5.0, "action": "label_only"},
    {"at": 12.0, "action": "block"},
)


@dataclass(frozen=True)
class Observation:
    """One answered query as a detector sees it (the prediction before minimisation)."""

    principal: str
    inputs: dict[str, npt.NDArray[Any]]
    prediction: Prediction
    time: float
    # what one detector derived from the inputs that another can reuse (the same profile's
    # features): every detector of the policy sees the same observation, in turn
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Evidence:
    amount: float
    kind: str
    details: dict[str, Any] = field(default_factory=dict)
    # the action this evidence brings applies to the answer that raised it (see the module)
    immediate: bool = False


class Detector(Protocol):
    """A stateful detector; it keeps its histories in `store` so replicas share them."""

    name: str

    def observe(self, obs: Observation, store: Store) -> Evidence | None: ...


class ActionLevel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float = Field(gt=0, description="total evidence at which the action starts")
    action: Action
    for_s: float | None = Field(default=None, gt=0, description="how long; forever if unset")


class DetectionPolicy(PolicyBase):
    name = "detection"

    class Options(PolicyOptions):
        detectors: list[dict[str, Any]] = Field(default_factory=list)
        actions: list[ActionLevel] = Field(default_factory=list)
        throttle: str = "1/second"
        # 0.5 on probabilities: the scores keep their shape and the label, and carry little
        # else; a score-based search can no longer tell a step that helped from one that did
        # not (benchmarks/noise_scale.py; docs/detect.md, "Actions")
        noise: float = Field(default=0.5, gt=0, description="Laplace scale for `noise`")
        noise_below: float | None = Field(
            default=None, gt=0, le=1, description="noise only rows less confident than this"
        )
        seed: int | None = None
        on_store_error: FailMode = "open"

    def __init__(self, options: Options, env: GuardEnv) -> None:
        self.options = options
        self.store = env.store
        self.levels = sorted(options.actions, key=lambda a: a.at)
        configured = {lv.action for lv in self.levels}
        # per strictest action, the configured actions in force (read on every request)
        self._in_force: dict[str | None, frozenset[str]] = {None: frozenset()}
        for action in ACTIONS:
            rank = ACTIONS.index(action)
            self._in_force[action] = frozenset(
                a for a in configured | {action} if ACTIONS.index(a) <= rank
            )
        self.noise_rule = OutputRule(
            mode="scores", noise=options.noise, noise_below=options.noise_below
        )
        self.rng = np.random.default_rng(options.seed)
        self.throttle = parse_limit(options.throttle)
        self.limiter = FixedWindowRateLimiter(env.store.rate_limit_storage())
        self.detectors: list[Detector] = []
        for i, entry in enumerate(options.detectors):
            factory: Any = registry("detectors").get(str(entry.get("kind")))
            opts_model: type[BaseModel] | None = getattr(factory, "Options", None)
            raw = {k: v for k, v in entry.items() if k != "kind"}
            if opts_model is None:
                self.detectors.append(factory(raw, env))
                continue
            try:
                opts = opts_model.model_validate(raw)
            except ValidationError as exc:
                pos = _position(env, self)
                raise config_error(
                    exc, env.config.source, ("policies", pos, "detectors", i)
                ) from None
            self.detectors.append(factory(opts, env))

    def applied(self, action: str | None) -> frozenset[str]:
        """The configured actions in force for a principal whose strictest action is `action`."""
        return self._in_force.get(action, frozenset())

    def on_request(self, request: Request) -> Verdict:
        try:
            action = self.store.get_state(request.principal_id).active_action()
            if action == "block":
                return Deny(
                    403,
                    "principal_blocked",
                    "this principal is blocked; contact the service operator",
                )
            if action == "throttle" and not self.limiter.hit(
                self.throttle, "throttle", request.principal_id
            ):
                return Deny(429, "rate_limited", "slow down", headers={"Retry-After": "1"})
        except (StoreError, StorageError) as exc:
            return store_unavailable(self.name, self.options.on_store_error, exc)
        applied = self.applied(action)
        if "label_only" in applied:
            request.metadata[DEGRADE_KEY] = True
        elif "noise" in applied:
            request.metadata[NOISE_KEY] = True
        return Allow()

    def on_response(self, request: Request, prediction: Prediction) -> Verdict:
        verdict = self._observe(request, prediction)
        if request.metadata.get(_NOW_KEY) == "label_only" and prediction.scores is not None:
            # (only an answer degraded now is stripped here: for a principal degraded on its
            # request, output minimisation drops the scores, after any decision policy that
            # still needs them)
            reason = verdict.reason if isinstance(verdict, Transform) else ""
            labels = minimise(prediction, OutputRule(mode="label"), self.rng)
            return Transform(
                prediction=labels, reason=",".join(filter(None, [reason, "label_only"]))
            )
        if not request.metadata.get(NOISE_KEY) or prediction.scores is None:
            return verdict
        # detectors saw the model's own answer; the principal gets noisy scores, same label
        noisy = minimise(prediction, self.noise_rule, self.rng)
        reason = verdict.reason if isinstance(verdict, Transform) else ""
        return Transform(prediction=noisy, reason=",".join(filter(None, [reason, "noise"])))

    def _observe(self, request: Request, prediction: Prediction) -> Verdict:
        if not self.detectors:
            return Allow()
        obs = Observation(request.principal_id, request.inputs, prediction, time.time())
        kinds: list[str] = []
        action, now = None, False
        try:
            for det in self.detectors:
                ev = det.observe(obs, self.store)
                if ev is None or ev.amount <= 0:
                    continue
                kinds.append(f"{det.name}:{ev.kind}")
                state = self.store.add_evidence(obs.principal, det.name, ev.amount)
                action = self._escalate(obs.principal, state, kinds)
                now = now or ev.immediate
                DETECTIONS.labels(det.name, action or "none").inc()
        except (StoreError, StorageError) as exc:
            store_unavailable(self.name, self.options.on_store_error, exc)
            return Allow()
        if not kinds:
            return Allow()
        if now:  # this answer already gets the action the evidence brought
            applied = self.applied(action)
            if "label_only" in applied:
                request.metadata[_NOW_KEY] = "label_only"
            elif "noise" in applied:
                request.metadata[NOISE_KEY] = True
        return Transform(prediction=prediction, reason="evidence=" + ",".join(kinds))

    def _escalate(self, principal: str, state: PrincipalState, kinds: list[str]) -> str | None:
        current = state.active_action()
        crossed = [lv for lv in self.levels if state.total >= lv.at]
        if not crossed:
            return current
        rank = ACTIONS.index
        level = max(crossed, key=lambda lv: rank(lv.action))
        if current is not None and rank(level.action) <= rank(current):
            return current
        until = time.time() + level.for_s if level.for_s else None
        self.store.set_action(principal, level.action, until)
        before = -1 if current is None else rank(current)
        if any(lv.action == "review" for lv in crossed) and before < rank("review"):
            # a human looks at the principal once per escalation past the review level, even
            # when one burst of evidence jumps straight to a stricter action
            details = {"evidence": state.evidence, "action": level.action, "signals": kinds}
            self.store.put_case(ReviewCase(principal, "detection", {}, details))
        return level.action


def _position(env: GuardEnv, policy: DetectionPolicy) -> int:
    for i, entry in enumerate(env.config.policies):
        if entry.get("kind") == DetectionPolicy.name:
            return i
    return 0
