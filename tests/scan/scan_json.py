"""Reading `bastion scan -f json` output in tests (uniquely named: test dirs are not packages)."""

from __future__ import annotations

import json
from typing import Any


def findings(stdout: str) -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads(stdout)
    result: list[dict[str, Any]] = data["findings"]
    return result
