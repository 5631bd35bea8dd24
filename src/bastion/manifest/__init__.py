"""describe: the ML system manifest (YAML, validated by pydantic, errors at file:line)."""

from bastion.manifest.elements import (
    AnyElement,
    Artifact,
    ArtifactFormat,
    ClientApp,
    Controls,
    DataProvider,
    Dataset,
    Decision,
    ElementBase,
    Endpoint,
    ExternalActor,
    FeatureStore,
    HumanReviewer,
    Impact,
    InputSpec,
    JsonMapping,
    Logging,
    Model,
    ModelOutput,
    ModelRegistry,
    PostProcessor,
    PreProcessor,
    PretrainedBase,
    PublicModel,
    RunsOn,
    Service,
    TrainingJob,
)
from bastion.manifest.loader import load_manifest, parse_manifest
from bastion.manifest.system import Assumption, Boundary, Flow, SystemInfo, SystemManifest, Trust


def json_schema() -> dict[str, object]:
    """The JSON Schema editors use to validate manifests (`bastion manifest schema`)."""
    schema = SystemManifest.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "bastion ML system manifest"
    return schema


__all__ = [
    "AnyElement",
    "Artifact",
    "ArtifactFormat",
    "Assumption",
    "Boundary",
    "ClientApp",
    "Controls",
    "DataProvider",
    "Dataset",
    "Decision",
    "ElementBase",
    "Endpoint",
    "ExternalActor",
    "FeatureStore",
    "Flow",
    "HumanReviewer",
    "Impact",
    "InputSpec",
    "JsonMapping",
    "Logging",
    "Model",
    "ModelOutput",
    "ModelRegistry",
    "PostProcessor",
    "PreProcessor",
    "PretrainedBase",
    "PublicModel",
    "RunsOn",
    "Service",
    "SystemInfo",
    "SystemManifest",
    "TrainingJob",
    "Trust",
    "json_schema",
    "load_manifest",
    "parse_manifest",
]
