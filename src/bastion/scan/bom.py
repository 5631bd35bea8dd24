"""An ML-BOM (CycloneDX 1.6) of the models found: what ships, its digest, format and verdict.

Models inside a bundle appear as components nested under the bundle, named by
their path inside it, so the BOM answers "which models does this app carry".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bastion.errors import UsageError
from bastion.scan.scanner import FileScan

__all__ = ["render_bom"]


def render_bom(scans: Sequence[FileScan]) -> str:
    try:
        from cyclonedx.model import HashAlgorithm, HashType, Property
        from cyclonedx.model.bom import Bom
        from cyclonedx.model.component import Component, ComponentType
        from cyclonedx.output.json import JsonV1Dot6
    except ImportError:
        raise UsageError(
            "bastion bom needs cyclonedx-python-lib", hint="pip install 'bastion-ml[bom]'"
        ) from None

    def props(**values: Any) -> list[Any]:
        return [
            Property(name=f"bastion:{k}", value=str(v)) for k, v in values.items() if v is not None
        ]

    bom = Bom()
    for scan in scans:
        if not scan.artifacts:
            continue
        name = Path(scan.path).name
        hashes = [HashType(alg=HashAlgorithm.SHA_256, content=scan.sha256)]
        whole = next((a for a in scan.artifacts if a.member is None), None)
        if whole is not None:
            top = Component(
                type=ComponentType.MACHINE_LEARNING_MODEL,
                name=name,
                bom_ref=scan.path,
                hashes=hashes,
                properties=props(
                    path=scan.path, format=whole.format, bytes=scan.size, verdict=scan.verdict.value
                ),
            )
        else:
            top = Component(
                type=ComponentType.FILE,
                name=name,
                bom_ref=scan.path,
                hashes=hashes,
                properties=props(path=scan.path, bytes=scan.size, verdict=scan.verdict.value),
            )
        members = [] if whole is not None else [a for a in scan.artifacts if a.member]
        for art in members:
            assert art.member is not None
            if any(o.member and art.member.startswith(o.member + "!/") for o in members):
                continue  # part of a model already listed (data.pkl of a bundled .pt)
            top.components.add(
                Component(
                    type=ComponentType.MACHINE_LEARNING_MODEL,
                    name=art.member,
                    bom_ref=f"{scan.path}!/{art.member}",
                    hashes=[HashType(alg=HashAlgorithm.SHA_256, content=art.sha256)]
                    if art.sha256
                    else [],
                    properties=props(
                        member=art.member,
                        format=art.format,
                        bytes=art.size,
                        verdict=art.verdict.value,
                    ),
                )
            )
        bom.components.add(top)
    return str(JsonV1Dot6(bom).output_as_string(indent=2))
