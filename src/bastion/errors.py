"""One exception tree, so the CLI can map any failure to an exit code and a one-line message.

::

    BastionError                      exit 3 unless a subclass says otherwise
    ├── UsageError                    exit 2: the user asked for something we cannot do
    │   ├── ConfigError               a file the user wrote is invalid (names file:line:col)
    │   │   └── ManifestError         ... the system manifest in particular
    │   └── PluginError               unknown plugin name, broken entry point
    └── OperationalError              exit 3: the world did not cooperate
        ├── TargetError               endpoint unreachable, TLS failure, unparseable answer
        │   ├── EndpointError         the endpoint answered with an error status (4xx/5xx)
        │   ├── EndpointTimeout       the endpoint did not answer in time (a hang, for probes)
        │   ├── BudgetExhausted       the query ledger's budget is spent
        │   └── AccessDenied          an attack asked for output the target does not give
        ├── ScanError                 an artifact could not be read at all
        ├── StoreError                the guard's state store (SQLite, Redis) is unavailable
        └── IntegrityError            a model artifact's digest does not match its pin

Every error carries a message that says what went wrong, where, and how to fix
it; the CLI prints `str(error)` and never a traceback.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "BastionError",
    "BudgetExhausted",
    "ConfigError",
    "EndpointError",
    "EndpointTimeout",
    "IntegrityError",
    "ManifestError",
    "OperationalError",
    "PluginError",
    "ScanError",
    "StoreError",
    "TargetError",
    "UsageError",
]


class BastionError(Exception):
    exit_code: int = 3

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(BastionError):
    exit_code = 2


class ConfigError(UsageError):
    """An invalid file written by the user; points at the exact place."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.line = line
        self.column = column
        self.field = field

    @property
    def where(self) -> str:
        out = self.path or "<input>"
        if self.line is not None:
            out += f":{self.line}"
            if self.column is not None:
                out += f":{self.column}"
        return out

    def __str__(self) -> str:
        text = f"{self.where}: "
        if self.field:
            text += f"{self.field}: "
        text += self.message
        if self.hint:
            text += f" — {self.hint}"
        return text


class ManifestError(ConfigError):
    pass


class PluginError(UsageError):
    pass


class OperationalError(BastionError):
    exit_code = 3


class TargetError(OperationalError):
    pass


class EndpointError(TargetError):
    """The endpoint answered, but with an error status; the ledger retries 429/503 on it."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        retry_after: float | None = None,
        body: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.retry_after = retry_after
        self.body = body


class EndpointTimeout(TargetError):
    """No answer within the timeout: an outage for an attack, a finding for a probe."""


class BudgetExhausted(TargetError):
    """Raised by the query ledger before a query that would exceed the budget is sent."""

    def __init__(self, message: str, *, spent: int, budget: int) -> None:
        super().__init__(message, hint="raise --budget or lower the attack's query needs")
        self.spent = spent
        self.budget = budget


class AccessDenied(TargetError):
    """Raised before an attack reads output (e.g. scores) that the attacker's access lacks."""


class ScanError(OperationalError):
    pass


class StoreError(OperationalError):
    """The guard's state store failed; policies turn this into fail-closed or fail-open."""


class IntegrityError(OperationalError):
    """A model artifact does not match the digest it is pinned to; the guard refuses to start."""
