"""Real servers with planted flaws, for bastion's tests, examples and demo (extra `serve`)."""

from bastion.testing.background import serve_in_background
from bastion.testing.manifests import iris_service_manifest
from bastion.testing.servers import ServerConfig, ServerState, iris_model, model_app

__all__ = [
    "ServerConfig",
    "ServerState",
    "iris_model",
    "iris_service_manifest",
    "model_app",
    "serve_in_background",
]
