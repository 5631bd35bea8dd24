"""Exposure probes: measure what a live endpoint really gives a caller."""

from bastion.probes.base import (
    DeclaredControls,
    Endpoint,
    Probe,
    ProbeSession,
    ProbeSettings,
)
from bastion.probes.runner import ProbeRun, load_probes, probe_endpoint

__all__ = [
    "DeclaredControls",
    "Endpoint",
    "Probe",
    "ProbeRun",
    "ProbeSession",
    "ProbeSettings",
    "load_probes",
    "probe_endpoint",
]
