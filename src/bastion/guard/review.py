"""The human review desk: list, show and resolve held requests (HTTP endpoint and CLI).

Reviewers need the `review` scope; the caller whose request was held may read
its own case (to learn the outcome) but not others'. Without an API-key
policy there is no way to tell reviewers apart, so the HTTP desk stays closed
and only the CLI (which has the store directly) can act.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qs

from bastion.guard.core import Guard
from bastion.guard.request import Deny, Principal, Request
from bastion.guard.stores.base import ReviewCase

__all__ = ["AUTH_POLICIES", "REVIEW_SCOPE", "ReviewDesk", "case_summary"]

REVIEW_SCOPE = "review"
AUTH_POLICIES = ("api_key", "jwt")  # policies that tell callers apart


def case_summary(case: ReviewCase) -> dict[str, Any]:
    return asdict(case)


class ReviewDesk:
    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def authenticate(self, headers: dict[str, str]) -> Principal | Deny:
        auth = next((p for p in self.guard.policies if p.name in AUTH_POLICIES), None)
        if auth is None:
            return Deny(
                404,
                "review_disabled",
                "the review endpoint needs an api_key or jwt policy; use `bastion guard review`",
            )
        req = Request({}, headers=headers)
        verdict = auth.on_request(req)
        if isinstance(verdict, Deny) and verdict.reason != "missing_scope":
            return verdict
        # a missing 'predict' scope does not matter here: reviewers may not predict
        if req.principal is None:
            return Deny(401, "unauthenticated", "credentials are required (API key or token)")
        return req.principal

    def list(self, who: Principal, query: str) -> tuple[int, Any]:
        if not who.has(REVIEW_SCOPE):
            return 403, {"error": "missing_scope", "message": "listing cases needs 'review'"}
        status = parse_qs(query).get("status", ["pending"])[0]
        cases = self.guard.store.list_cases(None if status == "all" else status)
        return 200, {"cases": [case_summary(c) for c in cases]}

    def show(self, who: Principal, case_id: str) -> tuple[int, Any]:
        case = self.guard.store.get_case(case_id)
        if case is None or not (who.has(REVIEW_SCOPE) or who.id == case.principal):
            return 404, {"error": "not_found", "message": f"no case {case_id!r}"}
        if not who.has(REVIEW_SCOPE):
            return 200, {"id": case.id, "status": case.status, "resolution": case.resolution}
        return 200, case_summary(case)

    def resolve(self, who: Principal, case_id: str, body: Any) -> tuple[int, Any]:
        if not who.has(REVIEW_SCOPE):
            return 403, {"error": "missing_scope", "message": "resolving needs 'review'"}
        resolution = body.get("resolution") if isinstance(body, dict) else None
        if not isinstance(resolution, str) or not resolution:
            return 400, {
                "error": "malformed_request",
                "message": 'send {"resolution": "<decision>"}',
            }
        case = self.guard.store.resolve_case(case_id, resolution, who.id)
        if case is None:
            return 404, {"error": "not_found", "message": f"no case {case_id!r}"}
        if self.guard.audit:
            self.guard.audit.write(
                {
                    "event": "review",
                    "case": case.id,
                    "resolution": resolution,
                    "reviewer": who.id,
                    "principal": case.principal,
                }
            )
        return 200, case_summary(case)
