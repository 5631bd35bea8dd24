"""Where probes aim: an endpoint from CLI flags, or each endpoint element of a manifest.

The manifest's declared controls travel with the endpoint so the declared-vs-
observed probe can hold the live system to what its owners wrote down; the
served model's input shape and range tell the probes what a valid input is.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from bastion.errors import UsageError
from bastion.probes.base import DeclaredControls, Endpoint
from bastion.target.dialects import JsonMapping
from bastion.target.http import HttpOptions
from bastion.target.remote import HttpTarget, json_target, oip_target, split_oip_url

__all__ = [
    "endpoints_from_manifest",
    "make_endpoint",
    "split_oip_url",
    "target_for",
    "with_declared",
]


def make_endpoint(
    url: str,
    protocol: Literal["oip", "json"] = "oip",
    model_name: str | None = None,
    **kwargs: Any,
) -> Endpoint:
    """An Endpoint from what a user types; OIP accepts the base or the full infer URL."""
    if protocol == "oip":
        url, from_path = split_oip_url(url)
        model_name = model_name or from_path
    return Endpoint(url=url, protocol=protocol, model_name=model_name, **kwargs)


def _flag(value: bool | None, fallback: bool | None) -> bool | None:
    return value if value is not None else fallback


def endpoints_from_manifest(
    manifest: Any,
    options: HttpOptions | None = None,
    only: str | None = None,
) -> list[Endpoint]:
    """One Endpoint per endpoint element with a URL (or just the one named `only`)."""
    chosen = manifest.of_type("endpoint")
    if only is not None:
        chosen = [e for e in chosen if e.id == only]
        if not chosen:
            ids = ", ".join(e.id for e in manifest.of_type("endpoint")) or "none"
            raise UsageError(f"no endpoint element {only!r} in the manifest", hint=f"known: {ids}")
    endpoints: list[Endpoint] = []
    for element in chosen:
        if not element.url:
            continue
        model = None
        if element.model:
            try:
                model = manifest.element(element.model)
            except KeyError:
                model = None
        shape = bounds = None
        out_declared: bool | None = None
        model_controls = None
        if model is not None:
            spec = model.input
            shape = tuple(spec.shape) if spec.shape else None
            if spec.min is not None and spec.max is not None:
                bounds = (float(spec.min), float(spec.max))
            # Declaring a label or top-k API is declaring output minimisation.
            if model.output.kind in ("label", "top_k"):
                out_declared = True
            model_controls = model.controls
        controls = element.controls
        auth = None if controls.auth is None else controls.auth != "none"
        declared = DeclaredControls(
            auth=auth,
            rate_limit=controls.rate_limit,
            output_minimisation=_flag(
                controls.output_minimisation,
                _flag(getattr(model_controls, "output_minimisation", None), out_declared),
            ),
            input_validation=_flag(
                controls.input_validation, getattr(model_controls, "input_validation", None)
            ),
            verbose_errors=getattr(element, "verbose_errors", None),
            exposes_metadata=getattr(element, "exposes_metadata", None),
        )
        mapping = JsonMapping()
        if element.mapping is not None:
            mapping = JsonMapping(
                input_field=element.mapping.input_path,
                label_field=element.mapping.label_path,
                scores_field=element.mapping.scores_path,
            )
        endpoint = make_endpoint(
            element.url,
            element.protocol,
            element.model_name,
            options=options or HttpOptions(),
            mapping=mapping,
            input_shape=shape,
            bounds=bounds,
            declared=declared,
            element_id=element.id,
            location=manifest.location_of(element.id),
        )
        endpoints.append(endpoint)
    return endpoints


def with_declared(endpoint: Endpoint, declared: DeclaredControls) -> Endpoint:
    """CLI declarations override the manifest's, field by field."""
    merged = DeclaredControls(
        auth=_flag(declared.auth, endpoint.declared.auth),
        rate_limit=declared.rate_limit or endpoint.declared.rate_limit,
        output_minimisation=_flag(
            declared.output_minimisation, endpoint.declared.output_minimisation
        ),
        input_validation=_flag(declared.input_validation, endpoint.declared.input_validation),
        verbose_errors=_flag(declared.verbose_errors, endpoint.declared.verbose_errors),
        exposes_metadata=_flag(declared.exposes_metadata, endpoint.declared.exposes_metadata),
    )
    return replace(endpoint, declared=merged)


def target_for(endpoint: Endpoint) -> HttpTarget:
    """The query target behind an endpoint (wrap it in a Ledger before use)."""
    if endpoint.protocol == "oip":
        return oip_target(
            endpoint.url,
            endpoint.model_name or "",
            options=endpoint.options,
            bounds=endpoint.bounds,
        )
    return json_target(
        endpoint.url,
        mapping=endpoint.mapping,
        options=endpoint.options,
        input_shape=endpoint.input_shape,
        bounds=endpoint.bounds,
    )
