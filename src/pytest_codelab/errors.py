"""Errors of the gate.

``GateError`` and its subclasses describe bad input or an unusable environment. Their
message is one line, because the plugin shows it to the user as the whole answer (a
``pytest.UsageError``), never with a traceback. Other errors here are test outcomes
(a wait that timed out, a stack that is not Ready) and may span lines.
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """Collapse whitespace so a message cannot spill over several lines."""
    return " ".join(str(text).split())


class GateError(Exception):
    """Bad input or an unusable environment, told in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))

    @property
    def message(self) -> str:
        return str(self.args[0])


class KubeconfigError(GateError):
    """The kubeconfig file is missing, unreadable or not a kubeconfig."""


class ContextError(GateError):
    """The requested kubeconfig context does not exist."""


class ApiUnreachable(GateError):
    """The Kubernetes API server did not answer."""


class AccessDenied(GateError):
    """RBAC does not allow what the gate needs to do."""


class ProviderUnavailable(GateError):
    """A cluster provider cannot be used (e.g. the local engine is not installed)."""


class SafetyError(GateError):
    """The gate was about to touch something it does not own."""


class WaitTimeout(AssertionError):
    """A condition did not hold in time; the message names it and what was last seen.

    An AssertionError so that pytest reports it as a test failure, not an error in
    the test's own code.
    """


class RolloutFailed(AssertionError):
    """A rollout can no longer succeed (its progress deadline was exceeded)."""


class StackNotReady(AssertionError):
    """Workloads of the deployed stack did not become Ready; the message explains each."""


class DeployFailed(AssertionError):
    """The API server refused an object of the stack; the message names it and says why."""
