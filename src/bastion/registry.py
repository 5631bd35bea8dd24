"""Name → plugin, one registry per capability.

Built-ins are listed here explicitly as lazy `module:attribute` references, so
that `bastion threats` does not import numpy-heavy attack code and a reader
sees every built-in plugin in one place. Third parties add plugins through the
entry-point group `bastion.<capability>` (e.g. `bastion.attacks`); a built-in
name cannot be shadowed by a plugin.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

from bastion.errors import PluginError

__all__ = ["CAPABILITIES", "Registry", "registry"]

# capability -> {name: "module:attribute"}; one line per built-in plugin.
BUILTINS: dict[str, dict[str, str]] = {
    "rules": {
        "catalogue": "bastion.threatmodel.engine:CatalogueRules",
    },
    "reporters": {
        "json": "bastion.report.json_report:render_json",
        "md": "bastion.report.markdown:render_markdown",
        "html": "bastion.report.html:render_html",
        "sarif": "bastion.report.sarif:render_sarif",
    },
    "probes": {
        "output": "bastion.probes.exposure:OutputExposureProbe",
        "auth": "bastion.probes.access:AuthProbe",
        "inputs": "bastion.probes.inputs:InputHandlingProbe",
        "errors": "bastion.probes.disclosure:ErrorLeakageProbe",
        "metadata": "bastion.probes.disclosure:MetadataProbe",
        "determinism": "bastion.probes.determinism:DeterminismProbe",
        "rate_limit": "bastion.probes.access:RateLimitProbe",
        "declared": "bastion.probes.declared:DeclaredControlsProbe",
    },
    "attacks": {
        "hopskipjump-l2": "bastion.attacks.evasion.hopskipjump:HopSkipJumpL2",
        "hopskipjump-linf": "bastion.attacks.evasion.hopskipjump:HopSkipJumpLinf",
        "boundary": "bastion.attacks.evasion.boundary:BoundaryAttack",
        "rays": "bastion.attacks.evasion.rays:RayS",
        "square-linf": "bastion.attacks.evasion.square:SquareLinf",
        "square-l2": "bastion.attacks.evasion.square:SquareL2",
        "simba-pixel": "bastion.attacks.evasion.simba:SimBAPixel",
        "simba-dct": "bastion.attacks.evasion.simba:SimBADCT",
        "transfer-pgd": "bastion.attacks.evasion.transfer:TransferPGD",
        "extraction-natural": "bastion.attacks.extraction:NaturalExtraction",
        "extraction-random": "bastion.attacks.extraction:RandomExtraction",
        "extraction-jacobian": "bastion.attacks.extraction:JacobianExtraction",
        "extraction-active": "bastion.attacks.extraction:ActiveExtraction",
        "membership-loss": "bastion.attacks.membership:LossMembership",
        "membership-shadow": "bastion.attacks.membership:ShadowMembership",
        "membership-label-only": "bastion.attacks.membership:LabelOnlyMembership",
    },
    "scanners": {
        "models": "bastion.scan.plugin:ModelArtifactScanner",
    },
    "policies": {
        "api_key": "bastion.guard.policies.auth:ApiKeyAuth",
        "jwt": "bastion.guard.policies.bearer:JwtAuth",
        "quota": "bastion.guard.policies.quota:QuotaPolicy",
        "input_validation": "bastion.guard.policies.validation:InputValidation",
        "detection": "bastion.guard.policies.detection:DetectionPolicy",
        "output_minimisation": "bastion.guard.policies.minimise:OutputMinimisation",
        "decision": "bastion.guard.policies.decision:DecisionPolicy",
    },
    "stores": {
        "memory": "bastion.guard.stores.memory:MemoryStore",
        "sqlite": "bastion.guard.stores.sqlite:SQLiteStore",
        "redis": "bastion.guard.stores.redis:RedisStore",
    },
    "detectors": {
        "similarity": "bastion.detect.similarity:SimilarityDetector",
        "fingerprint": "bastion.detect.fingerprint:FingerprintDetector",
        "extraction": "bastion.detect.extraction:ExtractionDetector",
    },
}

CAPABILITIES = tuple(BUILTINS)


class Registry:
    """Plugins of one capability, resolved lazily on first use."""

    def __init__(self, capability: str, builtins: dict[str, str]) -> None:
        self.capability = capability
        self._refs: dict[str, str] = dict(builtins)
        self._loaded: dict[str, Any] = {}
        self._entry_points_read = False

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        self._entry_points_read = True
        for ep in entry_points(group=f"bastion.{self.capability}"):
            if ep.name not in self._refs:
                self._refs[ep.name] = ep.value

    def register(self, name: str, obj: Any) -> None:
        """Register an object directly (tests, embedding applications)."""
        self._loaded[name] = obj
        self._refs.setdefault(name, f"<registered {name}>")

    def names(self) -> list[str]:
        self._read_entry_points()
        return sorted(self._refs)

    def get(self, name: str) -> Any:
        if name in self._loaded:
            return self._loaded[name]
        self._read_entry_points()
        ref = self._refs.get(name)
        if ref is None:
            known = ", ".join(self.names()) or "none"
            raise PluginError(f"unknown {self.capability[:-1]} {name!r}", hint=f"known: {known}")
        module_name, _, attr = ref.partition(":")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise PluginError(
                f"cannot load {self.capability[:-1]} {name!r} from {ref}: {exc}",
                hint="is the plugin's package (or bastion's optional extra) installed?",
            ) from exc
        self._loaded[name] = obj
        return obj

    def items(self) -> Iterator[tuple[str, Any]]:
        for name in self.names():
            yield name, self.get(name)


_REGISTRIES = {cap: Registry(cap, refs) for cap, refs in BUILTINS.items()}


def registry(capability: str) -> Registry:
    try:
        return _REGISTRIES[capability]
    except KeyError:
        raise PluginError(
            f"unknown capability {capability!r}", hint=f"one of: {', '.join(CAPABILITIES)}"
        ) from None
