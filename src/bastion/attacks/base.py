"""What an attack plugin is, what it is given and what it gives back.

An attack declares the access it needs (labels or scores) and the data domains
it handles, so the engine runs only the attacks the observed access allows. It
receives an `Oracle` (never the model), the attacker's data and a budget, and
returns an `AttackResult`: measured numbers, per-point arrays and plot series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from bastion.attacks.oracle import Access, Oracle
from bastion.attacks.space import Domain, InputSpace
from bastion.findings import Series

if TYPE_CHECKING:
    from bastion.attacks.public_model import PublicMLP

__all__ = ["Attack", "AttackData", "AttackKind", "AttackResult", "Norm"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class AttackKind(StrEnum):
    EVASION = "evasion"
    EXTRACTION = "extraction"
    MEMBERSHIP = "membership"


class Norm(StrEnum):
    L2 = "l2"
    LINF = "linf"

    def of(self, delta: FloatArray) -> FloatArray:
        d = delta.reshape(delta.shape[0], -1)
        if self is Norm.L2:
            return np.asarray(np.sqrt(np.sum(d * d, axis=1)), dtype=np.float64)
        return np.asarray(np.max(np.abs(d), axis=1), dtype=np.float64)


@dataclass(frozen=True)
class AttackData:
    """The attacker's material, as flattened float rows with integer labels.

    `x`/`y`: points to attack (evasion) or the attacker's own labelled data
    (shadow models). `pool`: unlabelled natural inputs the attacker holds
    (extraction queries, transfer surrogates). `x_eval`/`y_eval`: held-out points to
    measure extraction fidelity on. `members`/`nonmembers`: the candidate
    records whose membership is tested. `targets`: target classes for a
    targeted evasion (one per row of `x`), None for untargeted.
    `public_model`: published weights close to the target's (the manifest's
    `public_model`), which a transfer attack crafts on without queries.
    `labelled`: every labelled row the attacker holds (`x`/`y` are cut to the
    points attacked); extraction measures its no-query baseline on them.
    """

    space: InputSpace
    x: FloatArray
    y: IntArray | None = None
    pool: FloatArray | None = None
    x_eval: FloatArray | None = None
    y_eval: IntArray | None = None
    members: tuple[FloatArray, IntArray] | None = None
    nonmembers: tuple[FloatArray, IntArray] | None = None
    targets: IntArray | None = None
    n_classes: int | None = None
    public_model: PublicMLP | None = None
    labelled: tuple[FloatArray, IntArray] | None = None


@dataclass(frozen=True)
class AttackResult:
    """What one attack achieved, with the sample size behind every number.

    Per-point arrays are for evasion: `queries` until success (or until the
    budget ran out), `spent` in total (their sum is `total_queries`), `l2`/`linf`
    of the best adversarial found, `adversarials` those points themselves (the
    clean point where none was found);
    `metrics` holds the headline numbers (success_rate, fidelity, auc, ...).
    `total_queries` is what the oracle counted for this attack.
    """

    attack: str
    kind: AttackKind
    access: Access
    n: int
    total_queries: int
    wall_time_s: float
    metrics: dict[str, float]
    success: npt.NDArray[np.bool_] | None = None
    queries: IntArray | None = None
    spent: IntArray | None = None
    l2: FloatArray | None = None
    linf: FloatArray | None = None
    adversarials: FloatArray | None = None
    series: tuple[Series, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    def evidence(self) -> dict[str, Any]:
        """Measured values as JSON-ready evidence for a Finding."""
        out: dict[str, Any] = {
            "attack": self.attack,
            "access": self.access.value,
            "sample_size": self.n,
            "total_queries": self.total_queries,
            "wall_time_s": round(self.wall_time_s, 3),
        }
        out.update({k: _round(v) for k, v in self.metrics.items()})
        if self.queries is not None and self.success is not None and self.success.any():
            q = self.queries[self.success]
            out["queries_median"] = float(np.median(q))
            out["queries_mean"] = round(float(np.mean(q)), 1)
            out["queries_quartiles"] = [float(v) for v in np.percentile(q, [25, 50, 75])]
            if self.l2 is not None and self.linf is not None:
                out["perturbation_l2_median"] = _round(float(np.median(self.l2[self.success])))
                out["perturbation_linf_median"] = _round(float(np.median(self.linf[self.success])))
        out["params"] = {k: v for k, v in self.params.items() if _jsonable(v)}
        return out


def _round(v: float) -> float:
    return round(float(v), 4)


def _jsonable(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


@runtime_checkable
class Attack(Protocol):
    """One attack. `budget` is per attacked point for evasion, total otherwise."""

    name: ClassVar[str]
    kind: ClassVar[AttackKind]
    access: ClassVar[Access]
    domains: ClassVar[frozenset[Domain]]

    def run(self, oracle: Oracle, data: AttackData, *, budget: int, seed: int) -> AttackResult: ...
