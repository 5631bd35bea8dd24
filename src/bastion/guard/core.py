"""The guard core: policies around exactly one model call, and one audit record per request.

Sans-IO: `admit` runs the request phase and `complete` the response phase;
the adapter in between calls the model however its world does (a function,
an ASGI app, an HTTP upstream). `handle` and `handle_async` join the three
for callers that just have a predict function.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.errors import IntegrityError
from bastion.guard.audit import AuditLog
from bastion.guard.config import GuardConfig, load_config
from bastion.guard.metrics import DECISIONS, LATENCY
from bastion.guard.policy import GuardEnv, Policy, PolicyBase, build_policies
from bastion.guard.request import Deny, Prediction, Request, Transform
from bastion.guard.stores import Store, open_store
from bastion.guard.telemetry import record_span

__all__ = ["Admission", "Guard", "Outcome", "file_sha256"]


@dataclass
class Outcome:
    """What the adapter answers: a prediction (allowed, maybe transformed) or a refusal."""

    status: int
    decision: str  # allow | deny | review | fallback | error
    prediction: Prediction | None = None
    deny: Deny | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.prediction is not None

    def error_body(self) -> dict[str, Any]:
        assert self.deny is not None
        body: dict[str, Any] = {"error": self.deny.reason, "message": self.deny.message}
        body.update(self.deny.body)
        return body


@dataclass
class Admission:
    """The request after its phase: either `denied`, or ready for the model call."""

    request: Request
    started: float
    headers: dict[str, str] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    denied: Outcome | None = None
    overhead_s: float = 0.0
    started_ns: int = field(default_factory=time.time_ns)


def _acts(policy: Policy, phase: str) -> bool:
    """False when `policy` inherits PolicyBase's allow-everything `phase` unchanged."""
    return getattr(type(policy), phase, None) is not getattr(PolicyBase, phase)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Guard:
    def __init__(
        self,
        config: GuardConfig,
        *,
        store: Store | None = None,
        audit: AuditLog | None = None,
        policies: list[Policy] | None = None,
    ) -> None:
        self.config = config
        self._check_integrity()
        self.store = store or open_store(config)
        self.env = GuardEnv(config, self.store)
        self.policies = policies if policies is not None else build_policies(self.env)
        # the phases a policy does not override allow everything: skip them per request
        self._request_phase = [p for p in self.policies if _acts(p, "on_request")]
        self._response_phase = [p for p in self.policies if _acts(p, "on_response")]
        spec = config.audit
        self.audit = audit
        if self.audit is None and spec.enabled:
            # `{host}`/`{pid}` give each replica its own file: one writer per chain
            path = spec.path.format(host=socket.gethostname(), pid=os.getpid())
            self.audit = AuditLog(config.resolve(path), max_bytes=spec.max_bytes, fsync=spec.fsync)
        self._model = f"{config.model.name}:{config.model.version}".rstrip(":")
        self._counters: dict[tuple[str, str, str], Any] = {}
        if self.audit:
            self.audit.write(
                {
                    "event": "start",
                    "model": self._model,
                    "policies": [p.name for p in self.policies],
                    "store": self.store.name,
                }
            )

    @classmethod
    def from_file(cls, path: Path | str) -> Guard:
        return cls(load_config(path))

    def _check_integrity(self) -> None:
        """Refuse to start in front of a model whose bytes are not the pinned ones."""
        pin = self.config.model.artifact
        if pin is None:
            return
        path = self.config.resolve(pin.path)
        try:
            digest = file_sha256(path)
        except OSError as exc:
            raise IntegrityError(
                f"cannot read model artifact {path}: {exc.strerror}",
                hint="fix model.artifact.path in the guard config",
            ) from None
        if digest != pin.sha256.lower():
            raise IntegrityError(
                f"model artifact {path} has sha256 {digest}, but the config pins {pin.sha256}",
                hint="the model changed since it was pinned; verify it, then update "
                "model.artifact.sha256",
            )

    def admit(self, request: Request) -> Admission:
        t0 = time.perf_counter()
        adm = Admission(request=request, started=t0)
        for policy in self._request_phase:
            verdict = policy.on_request(adm.request)
            if isinstance(verdict, Deny):
                adm.headers.update(verdict.headers)
                adm.reasons.append(f"{policy.name}:{verdict.reason}")
                adm.denied = Outcome(
                    verdict.status,
                    verdict.decision,
                    deny=verdict,
                    headers=adm.headers,
                    reasons=adm.reasons,
                )
                adm.overhead_s = time.perf_counter() - t0
                self._finish(adm, adm.denied, policy.name, verdict.reason, 0.0)
                return adm
            if verdict.headers:
                adm.headers.update(verdict.headers)
            if isinstance(verdict, Transform):
                if verdict.request is not None:
                    adm.request = verdict.request
                if verdict.reason:
                    adm.reasons.append(f"{policy.name}:{verdict.reason}")
        adm.overhead_s = time.perf_counter() - t0
        return adm

    def complete(self, adm: Admission, prediction: Prediction, model_s: float = 0.0) -> Outcome:
        t0 = time.perf_counter()
        decision, decided_by, why = "allow", "", ""
        for policy in self._response_phase:
            verdict = policy.on_response(adm.request, prediction)
            if verdict.headers:
                adm.headers.update(verdict.headers)
            if isinstance(verdict, Deny):
                adm.reasons.append(f"{policy.name}:{verdict.reason}")
                outcome = Outcome(
                    verdict.status,
                    verdict.decision,
                    deny=verdict,
                    headers=adm.headers,
                    reasons=adm.reasons,
                )
                adm.overhead_s += time.perf_counter() - t0
                self._finish(adm, outcome, policy.name, verdict.reason, model_s)
                return outcome
            if isinstance(verdict, Transform):
                if verdict.prediction is not None:
                    prediction = verdict.prediction
                if verdict.reason:
                    adm.reasons.append(f"{policy.name}:{verdict.reason}")
                if verdict.decision:
                    decision, decided_by, why = verdict.decision, policy.name, verdict.reason
        outcome = Outcome(
            200, decision, prediction=prediction, headers=adm.headers, reasons=adm.reasons
        )
        adm.overhead_s += time.perf_counter() - t0
        self._finish(adm, outcome, decided_by, why, model_s)
        return outcome

    def fail(self, adm: Admission, status: int, reason: str, message: str) -> Outcome:
        """The model call itself failed (upstream down or slow): audit it, answer an error."""
        deny = Deny(status, reason, message, decision="error")
        outcome = Outcome(
            status,
            "error",
            deny=deny,
            headers=adm.headers,
            reasons=[*adm.reasons, f"model:{reason}"],
        )
        self._finish(adm, outcome, "model", reason, 0.0)
        return outcome

    def _finish(
        self, adm: Admission, out: Outcome, policy: str, reason: str, model_s: float
    ) -> None:
        key = (out.decision, policy or "-", reason or "-")
        counter = self._counters.get(key)
        if counter is None:  # label lookups cost more than the increment; keep the children
            counter = self._counters[key] = DECISIONS.labels(*key)
        counter.inc()
        LATENCY.observe(adm.overhead_s)
        req = adm.request
        record_span(
            start_ns=adm.started_ns,
            end_ns=time.time_ns(),
            headers=req.headers,
            decision=out.decision,
            status=out.status,
            reasons=out.reasons,
            rows=req.rows,
            model=self._model,
        )
        if self.audit is None:
            return
        self.audit.write(
            {
                "event": "decision",
                "request_id": req.id,
                "principal": req.principal_id,
                "digest": req.digest(),
                "rows": req.rows,
                "decision": out.decision,
                "status": out.status,
                "reasons": out.reasons,
                "model": self._model,
                "guard_ms": round(adm.overhead_s * 1000, 3),
                "model_ms": round(model_s * 1000, 3),
            }
        )

    def handle(self, request: Request, model: Callable[[Request], Prediction]) -> Outcome:
        adm = self.admit(request)
        if adm.denied:
            return adm.denied
        t = time.perf_counter()
        try:
            prediction = model(adm.request)
        except Exception as exc:
            self.fail(adm, 502, "model_error", f"the model raised {type(exc).__name__}")
            raise
        return self.complete(adm, prediction, time.perf_counter() - t)

    async def handle_async(
        self, request: Request, model: Callable[[Request], Awaitable[Prediction]]
    ) -> Outcome:
        adm = self.admit(request)
        if adm.denied:
            return adm.denied
        t = time.perf_counter()
        try:
            prediction = await model(adm.request)
        except Exception as exc:
            self.fail(adm, 502, "model_error", f"the model raised {type(exc).__name__}")
            raise
        return self.complete(adm, prediction, time.perf_counter() - t)

    def ready(self) -> bool:
        try:
            self.store.ping()
        except Exception:
            return False
        return True

    def close(self) -> None:
        if self.audit:
            self.audit.close()
        self.store.close()
