"""Every generated sample gets the verdict it states; nothing is ever executed."""

from __future__ import annotations

from pathlib import Path

import pytest
import scan_corpus
from scan_corpus import BENIGN, Corpus

from bastion.scan import Scanner


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return scan_corpus.build(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def verdicts(corpus: Corpus) -> dict[str, tuple[str, str, list[str]]]:
    scanner = Scanner()
    out = {}
    for sample in corpus.samples:
        result = scanner.scan_file(sample.path)
        out[sample.name] = (sample.expected, result.verdict.value, [i.rule for i in result.issues])
    return out


def test_every_sample_gets_its_stated_verdict(
    verdicts: dict[str, tuple[str, str, list[str]]],
) -> None:
    wrong = {n: v for n, v in verdicts.items() if v[0] != v[1]}
    assert not wrong, "\n".join(f"{n}: expected {e}, got {g} {r}" for n, (e, g, r) in wrong.items())


def test_corpus_covers_benign_and_malicious(corpus: Corpus) -> None:
    benign = [s for s in corpus.samples if s.expected == BENIGN]
    bad = [s for s in corpus.samples if s.malicious]
    assert len(benign) >= 30 and len(bad) >= 60


def test_no_malicious_sample_is_clean_and_no_benign_is_flagged(
    corpus: Corpus, verdicts: dict[str, tuple[str, str, list[str]]]
) -> None:
    for s in corpus.samples:
        got = verdicts[s.name][1]
        assert (got == BENIGN) == (not s.malicious) or s.expected != BENIGN, s.name


def test_scanning_never_runs_a_payload(corpus: Corpus, verdicts: object) -> None:
    assert verdicts
    assert not corpus.marker.exists()
    assert not Path("PWNED").exists()
