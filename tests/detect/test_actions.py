"""The graded response: what a principal's answers look like as its evidence grows."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from bastion.attacks.base import AttackData
from bastion.attacks.oracle import Oracle
from bastion.detect.arena import Arena, PrincipalTarget
from bastion.detect.campaigns import space_of, victims
from bastion.detect.streams import Task
from bastion.errors import BastionError
from bastion.guard.policies.detection import GRADED_ACTIONS
from bastion.registry import registry
from bastion.target.base import QueryResult
from tests.detect.conftest import rows_similarity


class _Recorder(PrincipalTarget):
    """The attacker's view, with the model's own answer to each query kept beside it."""

    answers: list[tuple[npt.NDArray[np.float64], QueryResult]]

    def query(self, inputs: npt.NDArray[Any]) -> QueryResult:
        r = super().query(inputs)
        truth = self.arena.task.predict_proba(np.asarray(inputs, dtype=np.float64))
        self.answers.append((truth, r))
        return r


def test_the_evaluation_measures_the_actions_guard_plans_write(
    cancer: Task, cancer_profile: Path
) -> None:
    arena = Arena(cancer, [rows_similarity(cancer_profile)])
    levels = [(lv.at, lv.action) for p in arena.guard.policies for lv in getattr(p, "levels", [])]
    assert levels == [(a["at"], a["action"]) for a in GRADED_ACTIONS]


def test_square_gets_noisy_scores_from_its_first_evidence_until_labels_only(
    cancer: Task, cancer_profile: Path
) -> None:
    """Square climbs on exact scores. With the flag alone at the first level it got them
    until labels only (evidence 6), eight or nine queries after it was caught; now its scores
    are noisy from the query after the first evidence (the labels stay the model's: a user
    flagged by mistake still gets every answer right), until labels only."""
    arena = Arena(cancer, [rows_similarity(cancer_profile)])
    i = victims(arena, 1)[0]
    x0 = cancer.x_test[i]
    y0 = int(cancer.predict_proba(x0[None]).argmax())
    target = _Recorder(arena, "square", x0=x0, y0=y0, eps_l2=cancer.eps_l2 * 1.4)
    target.answers = []
    space = space_of(arena)
    square: Any = registry("attacks").get("square-linf")
    with contextlib.suppress(BastionError):
        square(eps=cancer.eps_linf).run(
            Oracle(target, space=space), AttackData(space=space, x=x0[None]), budget=200, seed=i
        )
    tally = target.tally
    assert tally.detected_at is not None and tally.stopped_at is not None
    before = target.answers[: tally.detected_at]
    after = target.answers[tally.detected_at : tally.stopped_at - 1]
    assert after, "no answer with scores between the first evidence and labels only"
    for truth, r in before:  # exact scores (rounded) until the first evidence
        assert r.scores is not None and np.allclose(r.scores, truth, atol=1e-4)
    noise = []
    for truth, r in after:
        assert r.scores is not None and np.array_equal(r.labels, truth.argmax(1))
        noise.append(float(np.abs(r.scores - truth).mean()))
    # Laplace noise of scale 0.5, renormalised: the scores carry the label and little else
    # (0.20 off the truth on average here; 0.08 at the earlier scale, 0.05)
    assert np.mean(noise) > 0.15, noise


@pytest.mark.parametrize(
    ("example", "domain"), [("fraud-scoring", "tabular"), ("content-moderation", "image")]
)
def test_guard_plans_write_the_detectors_the_evaluation_measures(
    example: str, domain: str, tmp_path: Path
) -> None:
    from bastion.detect.configurations import DOMAIN_CONFIGURATION, detectors
    from bastion.guard.plan import _detectors
    from bastion.manifest import load_manifest

    root = Path(__file__).resolve().parents[2]
    manifest = load_manifest(root / "examples" / example / "system.yaml")
    profile = tmp_path / "profile.json"
    written = _detectors(profile, tmp_path, manifest)
    assert written == detectors(DOMAIN_CONFIGURATION[domain], "profile.json")
