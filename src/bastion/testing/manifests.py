"""The manifest that describes the iris test server, shared by every test that probes it."""

from __future__ import annotations

__all__ = ["iris_service_manifest"]

_IRIS_SERVICE = """\
version: 1
system:
  name: Iris service
elements:
  - id: iris_api
    type: endpoint
    url: {url}/v2/models/iris/infer
    protocol: oip
    model: iris_model
    controls:
      auth: api_key
      rate_limit: 20/minute
  - id: iris_model
    type: model
    input: {{domain: tabular, shape: [4], min: 0, max: 8}}
    output: {{kind: label}}
"""


def iris_service_manifest(url: str) -> str:
    """A manifest declaring auth and a 20/minute limit for the iris server at `url`."""
    return _IRIS_SERVICE.format(url=url)
