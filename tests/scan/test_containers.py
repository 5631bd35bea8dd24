"""Archives read the way every loader reads them, within bounds a hostile file cannot move."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from pickle_asm import Asm, ZipSpec

from bastion.scan import ScanLimits, Scanner, Verdict
from bastion.scan.formats import Format, sniff
from bastion.scan.zip_reader import read_zip

EVIL = Asm(2).call("os", "system", "true").stop()


def _scan(
    tmp_path: Path, data: bytes, limits: ScanLimits | None = None
) -> tuple[Verdict, set[str]]:
    path = tmp_path / "sample"
    path.write_bytes(data)
    result = Scanner(limits).scan_file(path)
    return result.verdict, {i.rule for i in result.issues}


def test_zip_reader_matches_zipfile_on_a_normal_archive() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/one.txt", b"1" * 1000)
        z.writestr("two.bin", b"\x00\x01")
    listing = read_zip(io.BytesIO(buf.getvalue()), max_entries=10)
    assert [e.name for e in listing.entries] == ["a/one.txt", "two.bin"]
    assert listing.anomalies == [] and listing.prefix_bytes == 0


def test_zip64_archives_from_torch_are_read_without_anomalies(tmp_path: Path) -> None:
    torch = __import__("pytest").importorskip("torch")
    path = tmp_path / "m.pt"
    torch.save({"w": torch.ones(3)}, path)
    listing = read_zip(io.BytesIO(path.read_bytes()), max_entries=100)
    assert listing.anomalies == []
    assert any(e.name.endswith("/data.pkl") for e in listing.entries)


def test_hidden_local_entry_is_found_and_scanned(tmp_path: Path) -> None:
    data = ZipSpec().add("ok.txt", b"hello").add("x.pkl", EVIL, hidden=True).build()
    listing = read_zip(io.BytesIO(data), max_entries=10)
    hidden = [e for e in listing.entries if not e.in_directory]
    assert [e.name for e in hidden] == ["x.pkl"]
    verdict, rules = _scan(tmp_path, data)
    assert verdict is Verdict.MALICIOUS and {"S101", "S204"} <= rules


def test_every_duplicate_is_scanned_not_just_the_last(tmp_path: Path) -> None:
    data = ZipSpec().add("m.pkl", EVIL).add("m.pkl", b"\x80\x02K\x01.").build()
    verdict, rules = _scan(tmp_path, data)
    assert verdict is Verdict.MALICIOUS and {"S101", "S201"} <= rules


def test_pickle_with_a_zip_appended_is_scanned_both_ways(tmp_path: Path) -> None:
    data = ZipSpec(prefix=EVIL).add("a.txt", b"x").build()
    assert sniff(io.BytesIO(data)) >= {Format.ZIP, Format.PICKLE}
    verdict, rules = _scan(tmp_path, data)
    assert verdict is Verdict.MALICIOUS and "S207" in rules


def test_zip_bomb_stops_at_the_ratio_bound(tmp_path: Path) -> None:
    bomb = ZipSpec().add("z", b"\0" * (24 << 20), deflate=True).build()
    assert len(bomb) < 100_000
    assert _scan(tmp_path, bomb) == (Verdict.COULD_NOT_SCAN, {"S206"})


def test_total_size_bound_applies_across_members(tmp_path: Path) -> None:
    spec = ZipSpec()
    for i in range(4):
        spec.add(f"m{i}", np.random.default_rng(i).bytes(1 << 20), deflate=True)
    limits = ScanLimits(max_total_bytes=3 << 20)
    assert _scan(tmp_path, spec.build(), limits) == (Verdict.COULD_NOT_SCAN, {"S206"})


def test_member_count_bound(tmp_path: Path) -> None:
    spec = ZipSpec()
    for i in range(30):
        spec.add(f"f{i}.txt", b"x")
    assert _scan(tmp_path, spec.build(), ScanLimits(max_members=10))[0] is Verdict.COULD_NOT_SCAN


def test_unsupported_compression_is_not_clean(tmp_path: Path) -> None:
    data = bytearray(ZipSpec().add("m.pkl", EVIL).build())
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # method field -> 99 (AES)
        at = data.index(sig)
        offset = at + (8 if sig == b"PK\x03\x04" else 10)
        data[offset : offset + 2] = (99).to_bytes(2, "little")
    assert _scan(tmp_path, bytes(data)) == (Verdict.COULD_NOT_SCAN, {"S208"})


def test_tar_traversal_and_links_are_flagged(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("safe/link")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        tar.addfile(link)
        info = tarfile.TarInfo("/abs/model.pkl")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"\x80\x02N."))
    verdict, rules = _scan(tmp_path, buf.getvalue())
    assert verdict is Verdict.SUSPICIOUS and "S205" in rules


def test_gzipped_tar_with_a_model_is_a_bundle_exposure(tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ones(3))
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w") as tar:
        info = tarfile.TarInfo("app/weights.dat")
        info.size = len(buf.getvalue())
        tar.addfile(info, io.BytesIO(buf.getvalue()))
    path = tmp_path / "app.tgz"
    path.write_bytes(gzip.compress(tbuf.getvalue()))
    result = Scanner().scan_file(path)
    assert result.verdict is Verdict.CLEAN
    (issue,) = result.issues
    assert issue.rule == "S401" and issue.member == "app/weights.dat"
    assert issue.evidence["bundle"] == "tar"


def test_wheel_and_jar_kinds_are_named(tmp_path: Path) -> None:
    wheel = ZipSpec().add("pkg/model.pkl", b"\x80\x02N.").add("pkg-1.0.dist-info/WHEEL", b"x")
    result = Scanner().scan_file(_write(tmp_path / "p.whl", wheel.build()))
    assert [i.evidence["bundle"] for i in result.issues] == ["wheel"]
    jar = ZipSpec().add("META-INF/MANIFEST.MF", b"x").add("model.npy", _npy())
    result = Scanner().scan_file(_write(tmp_path / "a.jar", jar.build()))
    assert [(i.rule, i.member) for i in result.issues] == [("S401", "model.npy")]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ones(2))
    return buf.getvalue()


def test_truncated_compressed_stream_is_not_clean(tmp_path: Path) -> None:
    data = gzip.compress(b"\x80\x02N." * 1000)[:-20]
    verdict, rules = _scan(tmp_path, data)
    assert verdict is not Verdict.CLEAN and "S301" in rules


def test_non_model_files_produce_nothing(tmp_path: Path) -> None:
    for text in (b"import os\nos.system('x')\n", b"col1,col2\n1,2\n", b"", b"\x89PNG\r\n\x1a\n"):
        assert _scan(tmp_path, text) == (Verdict.CLEAN, set())


def test_time_bound_stops_a_long_pickle(tmp_path: Path) -> None:
    data = pickle.dumps(list(range(200_000)), protocol=0)
    limits = ScanLimits(max_seconds=1e-9)
    assert _scan(tmp_path, data, limits) == (Verdict.COULD_NOT_SCAN, {"S206"})


def test_stray_end_record_bytes_in_array_data_do_not_make_a_zip(tmp_path: Path) -> None:
    tail = b"PK\x05\x06" + (0).to_bytes(4, "little") + (3).to_bytes(2, "little") * 2
    tail += (46 * 3).to_bytes(4, "little") + (1000).to_bytes(4, "little") + b"\0\0"
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(np.random.default_rng(1).bytes(4096) + tail + b"\0" * 4, np.uint8))
    assert _scan(tmp_path, buf.getvalue()) == (Verdict.CLEAN, set())


def test_torch_archive_with_two_roots_is_ambiguous(tmp_path: Path) -> None:
    benign = b"\x80\x02}q\x00."
    data = ZipSpec().add("a/data.pkl", benign).add("b/data.pkl", benign).build()
    verdict, rules = _scan(tmp_path, data)
    assert verdict is Verdict.SUSPICIOUS and rules == {"S210"}
