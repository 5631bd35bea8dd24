"""Decision policy: the model is never the sole gate of a high-impact or unsure decision.

When a row's confidence is below a threshold and/or its predicted class is a
high-impact one, the model's answer is not returned: either a non-ML fallback
rule answers, or the request goes to a persisted human review queue and the
caller gets 202 with the case id. Put this policy before
`output_minimisation`: it needs the model's scores.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from bastion.errors import ConfigError, StoreError
from bastion.guard.policy import FailMode, GuardEnv, PolicyBase, PolicyOptions, store_unavailable
from bastion.guard.request import Allow, Deny, Prediction, Request, Transform, Verdict
from bastion.guard.stores.base import ReviewCase

__all__ = ["DecisionPolicy", "FallbackRule"]


class FallbackRule(BaseModel):
    """A fixed answer, or one threshold on one input feature (`input[..., feature]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: int | None = None
    input: str | None = None
    feature: int = 0
    threshold: float = 0.0
    above: int = 1
    below: int = 0

    def apply(self, request: Request, rows: int) -> npt.NDArray[np.int64]:
        if self.input is None:
            return np.full(rows, self.label if self.label is not None else 0, dtype=np.int64)
        x = np.asarray(request.inputs[self.input]).reshape(rows, -1)[:, self.feature]
        return np.where(x > self.threshold, self.above, self.below).astype(np.int64)


class DecisionPolicy(PolicyBase):
    name = "decision"

    class Options(PolicyOptions):
        confidence_below: float | None = Field(default=None, gt=0, le=1)
        high_impact_labels: list[int | str] = Field(default_factory=list)
        match: Literal["any", "all"] = "all"
        route: Literal["review", "fallback"] = "review"
        fallback: FallbackRule | None = None
        on_store_error: FailMode = "closed"

    def __init__(self, options: Options, env: GuardEnv) -> None:
        self.options = options
        self.store = env.store
        classes = env.config.model.classes or []
        self.high: set[int] = set()
        where = str(env.config.source.path) if env.config.source.path else None
        for lab in options.high_impact_labels:
            if isinstance(lab, int):
                self.high.add(lab)
            elif lab in classes:
                self.high.add(classes.index(lab))
            else:
                raise ConfigError(
                    f"high-impact label {lab!r} is not one of model.classes",
                    path=where,
                    field="decision.high_impact_labels",
                    hint="list the class names under model.classes, or use class indices",
                )
        self.review_path = env.config.proxy.review_path
        if options.route == "fallback" and options.fallback is None:
            raise ConfigError(
                "decision route 'fallback' needs a 'fallback' rule",
                path=where,
                field="decision.fallback",
                hint="e.g. fallback: {label: 0}",
            )

    def _triggered(self, pred: Prediction) -> npt.NDArray[np.bool_]:
        o = self.options
        conds: list[npt.NDArray[np.bool_]] = []
        if o.confidence_below is not None:
            conf = pred.confidence()
            low = (
                np.ones(len(pred.labels), dtype=bool) if conf is None else conf < o.confidence_below
            )
            conds.append(low)
        if self.high:
            labels = pred.labels
            conds.append(np.fromiter((int(v) in self.high for v in labels), bool, len(labels)))
        if not conds:
            return np.zeros(len(pred.labels), dtype=bool)
        joined = conds[0]
        for c in conds[1:]:
            joined = (joined | c) if o.match == "any" else (joined & c)
        return joined

    def on_response(self, request: Request, prediction: Prediction) -> Verdict:
        o = self.options
        if o.confidence_below is not None and not self.high and o.match == "all":
            lowest = prediction.lowest_confidence()  # common case: one threshold, one check
            if lowest is not None and lowest >= o.confidence_below:
                return Allow()
        hit = self._triggered(prediction)
        if not hit.any():
            return Allow()
        why = (
            "low_confidence_high_impact"
            if self.high and self.options.confidence_below
            else ("high_impact" if self.high else "low_confidence")
        )
        if self.options.route == "fallback":
            assert self.options.fallback is not None
            labels = prediction.labels.copy()
            labels[hit] = self.options.fallback.apply(request, len(labels))[hit]
            return Transform(
                prediction=prediction.with_(labels=labels, scores=None),
                reason=why,
                decision="fallback",
            )
        case = ReviewCase(
            principal=request.principal_id,
            reason=why,
            inputs={k: v.tolist() for k, v in request.inputs.items()},
            model_output={
                "labels": prediction.labels.tolist(),
                "scores": None if prediction.scores is None else prediction.scores.tolist(),
            },
        )
        try:
            self.store.put_case(case)
        except StoreError as exc:
            return store_unavailable(self.name, self.options.on_store_error, exc)
        return Deny(
            202,
            "pending_review",
            "the model's answer needs human review; the case id identifies it",
            body={"case": case.id, "status_url": f"{self.review_path}/{case.id}"},
            decision="review",
        )
