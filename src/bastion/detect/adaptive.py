"""An adaptive attacker that knows the detectors and learns from what the guard lets it see.

It follows the strategies published against stateful defences (OARS, CCS 2023):

* query blinding — every query is sent through a random transform the model
  is insensitive to (a one-pixel shift and small noise for images, small noise
  for rows), so consecutive queries are less alike;
* rejection sampling on observable responses — the attacker watches each
  answer; the guard never says "detected", but an account that stops getting
  scores or gets refused is burned, and the attacker learns that its queries
  were too alike: it raises the blinding strength and moves on;
* spreading — it holds several accounts (principals) and continues its
  campaign from the best point found so far on the next one.

The base attack (bastion's Square) runs unchanged on top: `AdaptiveTarget` is
the `Target` it queries.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.detect.arena import Arena, PrincipalTarget, Tally
from bastion.errors import TargetError
from bastion.target.base import OutputKind, QueryResult, TargetInfo

__all__ = ["AdaptiveTarget"]


class AdaptiveTarget:
    def __init__(
        self,
        arena: Arena,
        name: str,
        x0: npt.NDArray[np.float64],
        y0: int,
        *,
        eps_l2: float,
        accounts: int = 10,
        seed: int = 0,
        noise: float | None = None,
    ) -> None:
        self.arena = arena
        self.name = name
        self.x0, self.y0, self.eps_l2 = x0, y0, eps_l2
        self.accounts = accounts
        self.rng = np.random.default_rng(seed)
        t = arena.task
        self.span = t.upper - t.lower
        self.noise = noise if noise is not None else 0.003
        self.used: list[PrincipalTarget] = []
        self.success = False
        self._next()

    def _next(self) -> None:
        if len(self.used) >= self.accounts:
            raise TargetError(f"{self.name}: all {self.accounts} accounts are burned")
        self.current = PrincipalTarget(
            self.arena,
            f"{self.name}/acct{len(self.used)}",
            x0=self.x0,
            y0=self.y0,
            eps_l2=self.eps_l2,
        )
        self.used.append(self.current)

    def info(self) -> TargetInfo:
        return self.current.info()

    def close(self) -> None:
        return None

    def _blind(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        t = self.arena.task
        out = x + self.rng.normal(0.0, self.noise, x.shape) * self.span
        if t.domain == "image" and len(self.used) > 1:  # shifts once an account was burned
            imgs = out.reshape(-1, *t.shape)
            for k in range(len(imgs)):
                dy, dx = self.rng.integers(-1, 2, size=2)
                imgs[k] = np.roll(imgs[k], (int(dy), int(dx)), axis=(0, 1))
            out = imgs.reshape(x.shape)
        return np.asarray(np.clip(out, t.lower, t.upper), dtype=np.float64)

    def query(self, inputs: npt.NDArray[Any]) -> QueryResult:
        x = np.asarray(inputs, dtype=np.float64).reshape(-1, self.arena.task.lower.size)
        while True:
            try:
                r = self.current.query(self._blind(x))
            except TargetError:
                r = None
            if r is not None:  # whatever its shape, an answer's labels tell the attacker
                self._judge(x, r)
            if r is not None and (r.scores is not None or self.info().output is OutputKind.LABEL):
                return r
            # burned: the answers changed shape or stopped; adapt and move on
            self.noise *= 1.5
            self._next()

    def _judge(self, x: npt.NDArray[np.float64], r: QueryResult) -> None:
        """Success is the attacker's own (unblinded) candidate being adversarial within eps,
        which it learns from the answer to its blinded copy."""
        if self.success:
            return
        near = np.sqrt(((x - self.x0) ** 2).sum(1)) <= self.eps_l2
        flipped = np.asarray(r.labels) != self.y0
        cand = x[near & flipped]
        if cand.size:
            truth = self.arena.task.predict_proba(cand).argmax(1)
            self.success = bool(np.any(truth != self.y0))

    def summary(self) -> Tally:
        """One tally for the whole multi-account campaign."""
        total = Tally(self.name)
        for p in self.used:
            tl = p.tally
            if total.detected_at is None and tl.detected_at is not None:
                total.detected_at = total.queries + tl.detected_at
            total.queries += tl.queries
            total.answered += tl.answered
            total.cost_s += tl.cost_s
        total.success = self.success
        total.extra = {"accounts": len(self.used), "final_noise": self.noise, "attack": "adaptive"}
        return total
