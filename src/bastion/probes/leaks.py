"""What an answer must not tell a stranger: tracebacks, versions, file paths, internal hosts.

Shared by the error-leakage and metadata probes, so both call the same thing a
leak and the evidence names the kind, the place and a short excerpt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bastion.target.http import Exchange

__all__ = ["Leak", "find_leaks"]

_LIBS = (
    r"python|cpython|scikit-learn|sklearn|numpy|scipy|pandas|torch|pytorch|tensorflow|keras"
    r"|onnxruntime|xgboost|lightgbm|starlette|fastapi|uvicorn|gunicorn|flask|werkzeug|django"
    r"|tornado|aiohttp|nginx|apache|envoy|triton|mlserver|kserve|seldon|bentoml|torchserve"
    r"|openssl|node|express|php|java|tomcat|jetty"
)
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("stack_trace", re.compile(r"Traceback \(most recent call last\)")),
    ("stack_trace", re.compile(r"File \"[^\"]+\", line \d+")),
    ("stack_trace", re.compile(r"\bat [\w.$]+\([\w]+\.(?:java|kt|scala|go|js|ts):\d+\)")),
    ("version", re.compile(rf"\b(?:{_LIBS})[\"'\s:=/_-]{{1,4}}v?\d+\.\d+(?:\.\d+)?", re.I)),
    (
        "file_path",
        re.compile(
            r"(?<![\w.:/])/(?:srv|home|usr|opt|var|app|etc|root|tmp|models|data|mnt)"
            r"(?:/[\w.@+-]+)+"
        ),
    ),
    ("file_path", re.compile(r"\b[A-Za-z]:\\(?:[\w.-]+\\)+[\w.-]*")),
    (
        "internal_host",
        re.compile(
            r"\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:internal|local|corp|lan|intra|intranet)\b", re.I
        ),
    ),
    (
        "internal_host",
        re.compile(
            r"\b(?:10\.\d{1,3}\.\d{1,3}\.\d{1,3}|192\.168\.\d{1,3}\.\d{1,3}"
            r"|172\.(?:1[6-9]|2\d|3[01])\.\d{1,3}\.\d{1,3})\b"
        ),
    ),
)
# Headers that exist to name software; their value is checked for versions and hosts.
_HEADERS = ("server", "x-powered-by", "x-aspnet-version", "x-runtime", "via")


@dataclass(frozen=True)
class Leak:
    kind: str
    where: str
    excerpt: str

    def as_evidence(self) -> dict[str, str]:
        return {"kind": self.kind, "where": self.where, "excerpt": self.excerpt}


def _scan(text: str, where: str) -> list[Leak]:
    found: list[Leak] = []
    seen: set[tuple[str, str]] = set()
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            excerpt = match.group(0)[:120]
            if (kind, excerpt) not in seen:
                seen.add((kind, excerpt))
                found.append(Leak(kind, where, excerpt))
            if len(found) >= 20:
                return found
    return found


def find_leaks(exchange: Exchange, *, body_limit: int = 200_000) -> list[Leak]:
    """Leaks in one answer: its body (bounded) and its headers."""
    leaks = _scan(exchange.text[:body_limit], f"{exchange.method} {exchange.url} body")
    for name, value in exchange.headers.items():
        if name in _HEADERS or name.startswith("x-"):
            leaks += _scan(f"{name}: {value}", f"{exchange.method} {exchange.url} header {name}")
            if name in _HEADERS[1:3]:
                leaks.append(Leak("software_header", f"header {name}", f"{name}: {value}"[:120]))
    return leaks
