"""Run the exposure probes against one endpoint, in order, each within its bounds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bastion.errors import PluginError
from bastion.findings import Finding
from bastion.probes.base import BoundReached, Endpoint, Probe, ProbeSession, ProbeSettings
from bastion.registry import registry

__all__ = ["ProbeRun", "load_probes", "probe_endpoint"]

Progress = Callable[[str, int, int], None]  # (probe name, index, total)


@dataclass
class ProbeRun:
    """Findings plus what was measured and what it cost, per probe."""

    endpoint: Endpoint
    findings: list[Finding] = field(default_factory=list)
    observations: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    stopped: dict[str, str] = field(default_factory=dict)
    sent: list[tuple[str, str]] = field(default_factory=list)


def load_probes(names: Sequence[str] | None = None) -> list[Probe]:
    """Instantiate the named probes (all registered ones by default) in run order.

    The order matters: rate limiting runs late so its burst does not throttle the
    others, and the declared-vs-observed comparison runs last.
    """
    reg = registry("probes")
    chosen = list(names) if names else reg.names()
    probes: list[Probe] = []
    for name in chosen:
        plugin = reg.get(name)
        probe = plugin() if isinstance(plugin, type) else plugin
        if not isinstance(probe, Probe):
            raise PluginError(f"probe {name!r} lacks name, max_requests or run()")
        probes.append(probe)
    return sorted(probes, key=lambda p: (getattr(p, "order", 50), p.name))


def probe_endpoint(
    endpoint: Endpoint,
    settings: ProbeSettings | None = None,
    names: Sequence[str] | None = None,
    progress: Progress | None = None,
    *,
    probes: Sequence[Probe] | None = None,
) -> ProbeRun:
    """Run the named registered probes (all by default), or the given probe objects."""
    if probes is None:
        probes = load_probes(names)
    else:
        probes = sorted(probes, key=lambda p: (getattr(p, "order", 50), p.name))
    session = ProbeSession(endpoint, settings)
    run = ProbeRun(endpoint=endpoint)
    try:
        for index, probe in enumerate(probes):
            if progress is not None:
                progress(probe.name, index, len(probes))
            session.begin(probe)
            try:
                run.findings.extend(probe.run(session))
            except BoundReached as bound:
                run.stopped[probe.name] = str(bound)
            run.requests[probe.name] = session.used
        if progress is not None:
            progress("done", len(probes), len(probes))
    finally:
        session.close()
    run.observations = session.observations
    run.sent = list(session.sent)
    return run
