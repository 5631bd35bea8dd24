"""Output minimisation: give each caller only as much of the model's answer as it needs.

Scores are what score-based evasion, extraction and membership inference feed
on; labels alone make all three much more expensive. Modes: `label`, `top_k`
(k best classes), `scores`; optional rounding and Laplace noise on the scores
that never changes the returned label, either on every row or only on
low-confidence rows (the ones near the decision boundary that attacks probe).
The rule is chosen by the caller's scopes; a principal that a detector has
degraded gets labels only.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from bastion.guard.policy import GuardEnv, PolicyBase, PolicyOptions
from bastion.guard.request import Allow, Prediction, Request, Transform, Verdict

__all__ = ["DEGRADE_KEY", "OutputMinimisation", "OutputRule", "minimise"]

DEGRADE_KEY = "bastion.degrade_to_label"


class OutputRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["label", "top_k", "scores"] = "label"
    k: int = Field(default=1, ge=1)
    decimals: int | None = Field(default=None, ge=0, le=8)
    noise: float = Field(default=0.0, ge=0, description="Laplace scale on probabilities")
    noise_below: float | None = Field(default=None, gt=0, le=1)


def _noisy(
    scores: npt.NDArray[np.float64],
    labels: npt.NDArray[np.int64],
    rule: OutputRule,
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    rows = np.ones(scores.shape[0], dtype=bool)
    if rule.noise_below is not None:
        rows = np.nanmax(scores, axis=1) < rule.noise_below
    if not rows.any():
        return scores
    out = scores.copy()
    sub = out[rows] + rng.laplace(0.0, rule.noise, size=out[rows].shape)
    sub = np.clip(sub, 1e-6, None)
    sub /= sub.sum(axis=1, keepdims=True)
    # keep the label: swap the noisy maximum back onto the model's class
    idx = np.arange(sub.shape[0])
    want = labels[rows]
    top = sub.argmax(axis=1)
    hi, lo = sub[idx, top].copy(), sub[idx, want].copy()
    sub[idx, want], sub[idx, top] = hi, lo
    out[rows] = sub
    return out


_SMALL = 256  # score matrices up to this size are minimised in plain Python


def _top_one(
    scores: npt.NDArray[np.float64], labels: npt.NDArray[np.int64], decimals: int | None
) -> npt.NDArray[np.float64]:
    """Top-1 masking without numpy's per-call overhead, rounding exactly as `ndarray.round`
    does (scale, round half to even, unscale; the sign of a zero kept)."""
    scale = 10.0**decimals if decimals is not None else 0.0
    out: list[list[float]] = []
    for row, label in zip(scores.tolist(), labels.tolist(), strict=True):
        value = row[label]
        if decimals is not None and math.isfinite(value):
            scaled = value * scale
            value = math.copysign(round(scaled) / scale, scaled)
        masked = [math.nan] * len(row)
        masked[label] = value
        out.append(masked)
    return np.array(out, dtype=np.float64).reshape(scores.shape)


def minimise(pred: Prediction, rule: OutputRule, rng: np.random.Generator) -> Prediction:
    if rule.mode == "label" or pred.scores is None:
        return pred.with_(scores=None, top_k=None)
    scores = pred.scores
    if rule.noise > 0:
        scores = _noisy(scores, pred.labels, rule, rng)
    if rule.mode == "top_k" and rule.k == 1:  # the label's own score, rounded; NaN elsewhere
        if scores.size <= _SMALL and scores.dtype == np.float64:
            return pred.with_(scores=_top_one(scores, pred.labels, rule.decimals), top_k=1)
        rows = np.arange(scores.shape[0])
        kept = scores[rows, pred.labels]
        masked = np.full(scores.shape, np.nan, dtype=scores.dtype)
        masked[rows, pred.labels] = kept if rule.decimals is None else kept.round(rule.decimals)
        return pred.with_(scores=masked, top_k=1)
    if rule.decimals is not None:
        scores = scores.round(rule.decimals)
    if rule.mode == "top_k" and rule.k < scores.shape[1]:
        keep = np.argsort(-scores, axis=1, kind="stable")[:, : rule.k]
        masked = np.full_like(scores, np.nan)
        np.put_along_axis(masked, keep, np.take_along_axis(scores, keep, axis=1), axis=1)
        return pred.with_(scores=masked, top_k=rule.k)
    return pred.with_(scores=scores, top_k=None)


class OutputMinimisation(PolicyBase):
    name = "output_minimisation"

    class Options(PolicyOptions):
        default: OutputRule = Field(default_factory=OutputRule)
        scopes: dict[str, OutputRule] = Field(default_factory=dict)
        seed: int | None = None

    def __init__(self, options: Options, env: GuardEnv) -> None:
        self.options = options
        self.rng = np.random.default_rng(options.seed)

    def rule_for(self, request: Request) -> OutputRule:
        if request.metadata.get(DEGRADE_KEY):
            return OutputRule(mode="label")
        if request.principal is not None:
            for scope, rule in self.options.scopes.items():
                if request.principal.has(scope):
                    return rule
        return self.options.default

    def on_response(self, request: Request, prediction: Prediction) -> Verdict:
        rule = self.rule_for(request)
        if rule.mode == "scores" and rule.decimals is None and rule.noise == 0:
            return Allow()
        return Transform(prediction=minimise(prediction, rule, self.rng))
