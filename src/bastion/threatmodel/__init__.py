"""assess, part one: threats derived from the manifest by declarative rules."""

from bastion.threatmodel.engine import CatalogueRules, RulePack, system_data, threat_model
from bastion.threatmodel.graph import SystemGraph

__all__ = ["CatalogueRules", "RulePack", "SystemGraph", "system_data", "threat_model"]
