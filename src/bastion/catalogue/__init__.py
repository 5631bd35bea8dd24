"""Threats and mitigations as data, with MITRE ATLAS ids and names."""

from bastion.catalogue.loader import atlas_table, builtin_catalogue, load_catalogue
from bastion.catalogue.model import Catalogue, Mitigation, MitigationAdvice, Tags, Threat

__all__ = [
    "Catalogue",
    "Mitigation",
    "MitigationAdvice",
    "Tags",
    "Threat",
    "atlas_table",
    "builtin_catalogue",
    "load_catalogue",
]
