"""The main job: assess a whole system (threats, scan, probes, attacks) into one Report."""

from bastion.audit.links import LINKS, link
from bastion.audit.rundir import RunDir, StageResult
from bastion.audit.runner import audit, audit_manifest
from bastion.audit.stages import DEFAULT_ATTACKS, STAGES, AuditContext, AuditOptions

__all__ = [
    "DEFAULT_ATTACKS",
    "LINKS",
    "STAGES",
    "AuditContext",
    "AuditOptions",
    "RunDir",
    "StageResult",
    "audit",
    "audit_manifest",
    "link",
]
