"""The parts of an ML system, as a reviewer would inventory them.

Each element type carries the attributes that decide its threats: where a model
runs and what its API returns, whether training consumes user feedback, which
decision an output drives and what a wrong output costs. Unknown keys are
errors (`extra="forbid"`) because a typo in a security control must not read
as "control absent" silently.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AnyElement",
    "Artifact",
    "ArtifactFormat",
    "ClientApp",
    "Controls",
    "DataProvider",
    "Dataset",
    "Decision",
    "ElementBase",
    "Endpoint",
    "ExternalActor",
    "FeatureStore",
    "HumanReviewer",
    "Impact",
    "InputSpec",
    "JsonMapping",
    "Logging",
    "Model",
    "ModelOutput",
    "ModelRegistry",
    "Perturbation",
    "PostProcessor",
    "PreProcessor",
    "PretrainedBase",
    "Provenance",
    "PublicModel",
    "RunsOn",
    "Service",
    "TrainingJob",
]

_ID = r"^[A-Za-z][A-Za-z0-9_.-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Impact(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class RunsOn(StrEnum):
    SERVER = "server"
    CLIENT_DEVICE = "client_device"
    EDGE = "edge"
    THIRD_PARTY_API = "third_party_api"


class ArtifactFormat(StrEnum):
    PICKLE = "pickle"
    JOBLIB = "joblib"
    TORCH = "torch"
    TORCHSCRIPT = "torchscript"
    NUMPY = "numpy"
    KERAS = "keras"
    H5 = "h5"
    SAVEDMODEL = "savedmodel"
    ONNX = "onnx"
    SAFETENSORS = "safetensors"
    TFLITE = "tflite"
    COREML = "coreml"
    GGUF = "gguf"
    OTHER = "other"

    @property
    def executes_code_on_load(self) -> bool:
        """Formats whose standard loader can run arbitrary code from the file."""
        return self in _CODE_EXECUTING


_CODE_EXECUTING = {
    ArtifactFormat.PICKLE,
    ArtifactFormat.JOBLIB,
    ArtifactFormat.TORCH,
    ArtifactFormat.NUMPY,
    ArtifactFormat.KERAS,
    ArtifactFormat.H5,
    ArtifactFormat.SAVEDMODEL,
}


class Controls(_Strict):
    """Declared controls. None means "not declared"; False means "declared absent"."""

    auth: Literal["none", "api_key", "oauth2", "jwt", "mtls", "session"] | None = None
    rate_limit: str | None = Field(
        default=None, description="Declared limit per principal, e.g. '100/minute'."
    )
    input_validation: bool | None = None
    output_minimisation: bool | None = None
    signing: bool | None = None
    logging: bool | None = None
    monitoring: bool | None = None
    rollback: bool | None = None
    versioning: bool | None = None
    encryption: bool | None = None
    access_control: bool | None = None
    sandboxed: bool | None = None
    adversarial_training: bool | None = None
    anomaly_detection: bool | None = None
    data_validation: bool | None = None


class ElementBase(_Strict):
    id: str = Field(pattern=_ID, description="Unique id used by flows and boundaries.")
    name: str | None = None
    description: str | None = None
    owner: str | None = None
    controls: Controls = Field(default_factory=Controls)
    tags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.name or self.id


class Artifact(_Strict):
    path: str | None = None
    format: ArtifactFormat
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    signed: bool | None = None


class ModelOutput(_Strict):
    """What the model's API returns to its caller."""

    kind: Literal["label", "top_k", "scores", "logits"] = "scores"
    top_k: int | None = Field(default=None, ge=1)
    decimals: int | None = Field(default=None, ge=0, le=20)


class PretrainedBase(_Strict):
    name: str
    source: str | None = None
    third_party: bool = True
    public: bool = True


class Perturbation(_Strict):
    """The largest change to an input that still leaves it the same input to a person."""

    l2: float | None = Field(default=None, gt=0, description="Largest L2 change, input units.")
    linf: float | None = Field(
        default=None, gt=0, description="Largest change of any one feature, input units."
    )


class PublicModel(_Strict):
    """Published weights close to the deployed model that anyone can download.

    An attacker crafts transfer adversarials on them without a single query
    (`bastion attack` with `transfer-pgd`). Only data-only formats are
    accepted, so reading them can never run code: safetensors, or an `.npz`
    read without pickle. Layers are `<name>.weight` (out x in) and
    `<name>.bias` tensors, in natural order of their names.
    """

    path: str
    format: Literal["safetensors", "npz"] = "safetensors"
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    activation: Literal["relu", "tanh", "logistic", "identity"] | None = Field(
        default=None, description="Hidden-layer activation (default: file metadata, else relu)."
    )
    classes: tuple[int, ...] | None = Field(
        default=None, description="Class index of each output unit (default: 0, 1, ...)."
    )


class InputSpec(_Strict):
    domain: Literal["image", "tabular", "text", "audio", "video", "other"] = "other"
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    min: float | None = None
    max: float | None = None
    physical: bool = Field(
        default=False, description="Inputs are captured from the physical world (camera, sensor)."
    )
    perturbation: Perturbation | None = Field(
        default=None,
        description="Evasion success radius; by default a quarter of the median distance "
        "to the nearest input of another class in the attacker's data.",
    )


class Model(ElementBase):
    type: Literal["model"]
    framework: str | None = None
    task: str | None = None
    version: str | None = None
    artifact: Artifact | None = None
    runs_on: RunsOn = RunsOn.SERVER
    output: ModelOutput = Field(default_factory=ModelOutput)
    input: InputSpec = Field(default_factory=InputSpec)
    pretrained_base: PretrainedBase | None = None
    public_model: PublicModel | None = None
    personal_data: bool = Field(default=False, description="Trained on personal data.")


class JsonMapping(_Strict):
    """Where a plain-JSON endpoint takes its input and puts its answer (dotted paths)."""

    input_path: str = "inputs"
    label_path: str | None = "label"
    scores_path: str | None = "scores"


class Endpoint(ElementBase):
    type: Literal["endpoint"]
    url: str | None = None
    protocol: Literal["oip", "json"] = "oip"
    model: str | None = Field(default=None, description="Id of the model element served.")
    model_name: str | None = Field(default=None, description="Model name in the OIP path.")
    mapping: JsonMapping | None = None
    public: bool = Field(default=False, description="Reachable from the internet.")
    exposes_metadata: bool | None = None
    verbose_errors: bool | None = None


class PreProcessor(ElementBase):
    type: Literal["preprocessor"]
    parses: tuple[str, ...] = Field(default=(), description="Formats parsed, e.g. jpeg, csv.")
    library: str | None = None


class PostProcessor(ElementBase):
    type: Literal["postprocessor"]
    threshold: float | None = None


class Provenance(_Strict):
    tracked: bool = False
    source: str | None = None


class Dataset(ElementBase):
    type: Literal["dataset"]
    source: Literal["internal", "user", "partner", "public", "scraped", "synthetic"] = "internal"
    personal_data: bool = False
    provenance: Provenance = Field(default_factory=Provenance)


class TrainingJob(ElementBase):
    type: Literal["training_job"]
    trains: tuple[str, ...] = Field(default=(), description="Ids of the models it produces.")
    datasets: tuple[str, ...] = ()
    uses_user_data: bool = False
    uses_feedback: bool = False
    schedule: Literal["manual", "periodic", "continuous"] = "manual"
    provenance: Provenance = Field(default_factory=Provenance)


class FeatureStore(ElementBase):
    type: Literal["feature_store"]
    user_writable: bool = False


class ModelRegistry(ElementBase):
    type: Literal["model_registry"]
    stores: tuple[str, ...] = Field(default=(), description="Ids of the models it holds.")


class ClientApp(ElementBase):
    type: Literal["client_app"]
    platform: Literal["android", "ios", "web", "desktop", "embedded", "other"] = "other"
    bundle: str | None = Field(default=None, description="Path to the app bundle to scan.")
    ships: tuple[str, ...] = Field(default=(), description="Ids of models inside the bundle.")
    obfuscated: bool = False


class DataProvider(ElementBase):
    type: Literal["data_provider"]
    third_party: bool = True


class HumanReviewer(ElementBase):
    type: Literal["human_reviewer"]


class Decision(ElementBase):
    type: Literal["decision"]
    action: str = Field(description="What the output drives, e.g. 'block the upload'.")
    impact: Impact
    driven_by: tuple[str, ...] = Field(default=(), description="Ids of models deciding it.")
    fallback: str | None = Field(default=None, description="Non-ML rule used when unsure.")
    human_review: bool = False
    automated: bool = True
    other_signals: bool = Field(default=False, description="Non-ML evidence also consulted.")


class Logging(ElementBase):
    type: Literal["logging"]
    covers: tuple[str, ...] = Field(default=(), description="Ids of elements it records.")
    records_inputs: bool = False
    records_outputs: bool = False
    tamper_evident: bool = False
    alerting: bool = False


class ExternalActor(ElementBase):
    type: Literal["actor"]
    kind: Literal["user", "partner", "attacker", "operator", "other"] = "user"


class Service(ElementBase):
    type: Literal["service"]
    kind: str | None = None


AnyElement = Annotated[
    Model
    | Endpoint
    | PreProcessor
    | PostProcessor
    | Dataset
    | TrainingJob
    | FeatureStore
    | ModelRegistry
    | ClientApp
    | DataProvider
    | HumanReviewer
    | Decision
    | Logging
    | ExternalActor
    | Service,
    Field(discriminator="type"),
]
