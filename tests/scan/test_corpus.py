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


@pytest.mark.parametrize(
    ("sample", "rules"),
    [
        ("mal/cve_2025_1944.pt", {"S101", "S202"}),
        ("mal/cve_2025_1945.pt", {"S101", "S209"}),
        ("mal/cve_2025_10156.pt", {"S101", "S203"}),
        ("mal/cve_2025_1889.pt", {"S101"}),
        ("mal/duplicate_names.pt", {"S101", "S201"}),
        ("mal/hidden_local.pt", {"S101", "S204"}),
        ("mal/polyglot.pt", {"S101", "S207"}),
        ("mal/nullifai_broken.pkl", {"S101", "S106"}),
        ("mal/importlib_chain.pkl", {"S101", "S104"}),
        ("mal/app.apk", {"S101", "S401"}),
        ("mal/traversal.tar.gz", {"S101", "S205"}),
        ("sus/computed_name.pkl", {"S103"}),
        ("dos/zip_bomb.zip", {"S206"}),
    ],
)
def test_bypass_classes_are_caught_for_the_right_reason(
    verdicts: dict[str, tuple[str, str, list[str]]], sample: str, rules: set[str]
) -> None:
    assert rules <= set(verdicts[sample][2])


def test_memo_confusion_resolves_the_overwritten_slot(corpus: Corpus) -> None:
    sample = next(s for s in corpus.samples if s.name == "mal/memo_confusion.pkl")
    keys = {i.key for i in Scanner().scan_file(sample.path).issues}
    assert keys == {"os.system"}
