"""No secret in a plain env value, a command line or a ConfigMap: they belong in Secrets
(seed best practice 7)."""

from __future__ import annotations

import re

from pytest_codelab.deploy.rules.base import (
    Obj,
    Violation,
    cname,
    init_containers,
    main_containers,
    violation,
)

#: Workload annotation listing env var names allowed to hold a plain value although their
#: name looks secret (e.g. ``CACHE_KEY_PREFIX``): an explicit, reviewable opt-out.
ALLOW_PLAIN_ENV_ANNOTATION = "codelab.dev/allow-plain-env"


_SECRET_NAME = re.compile(r"KEY|SECRET|PASSW(OR)?D|PWD|TOKEN|CREDENTIAL|PRIVATE", re.I)
_CREDENTIAL_VALUE = [
    (re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@$]+@", re.I), "a URL with a password"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "an API key (sk-...)"),
    (re.compile(r"\b(ghp|gho|ghs|github_pat)_[A-Za-z0-9_]{16,}"), "a GitHub token"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."), "a JWT"),
]
#: ``key: value`` lines in config files whose key names a secret and whose value is a literal.
_CONFIG_SECRET_LINE = re.compile(
    r"^\s*[\w.-]*(password|passwd|secret|api_key|apikey|token|master_key)[\w.-]*\s*[:=]\s*"
    r"(?P<value>[^#\s].*?)\s*$",
    re.I | re.M,
)
_REFERENCE = re.compile(r"^[\"']?(os\.environ/|\$\{|\$\(|env:)|^[\"']{2}$|^(null|~|true|false)$")
_SECRET_FLAG = re.compile(r"^--?[\w-]*(pass|password|secret|token|api-?key)[\w-]*$", re.I)


def _credential_kind(value: str) -> str | None:
    for pattern, label in _CREDENTIAL_VALUE:
        if pattern.search(value):
            return label
    return None


def _allowed_plain(obj: Obj) -> set[str]:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(ALLOW_PLAIN_ENV_ANNOTATION) or ""
    return {n.strip() for n in str(raw).split(",") if n.strip()}


def check_plain_secrets(obj: Obj) -> list[Violation]:
    """No secret in a plain env value, a command line or a ConfigMap: they belong in Secrets."""
    out: list[Violation] = []
    fix_env = "move the value into a Secret and use env[].valueFrom.secretKeyRef"
    if obj.get("kind") == "ConfigMap":
        for key, text in (obj.get("data") or {}).items():
            if not isinstance(text, str):
                continue
            kind = _credential_kind(text)
            if kind:
                out.append(
                    violation(
                        "plain-secrets",
                        obj,
                        f"data[{key!r}] holds {kind}",
                        "keep secrets out of ConfigMaps: reference an env var fed from a Secret "
                        "(LiteLLM: os.environ/NAME)",
                    )
                )
                continue
            for m in _CONFIG_SECRET_LINE.finditer(text):
                if not _REFERENCE.search(m.group("value")):
                    out.append(
                        violation(
                            "plain-secrets",
                            obj,
                            f"data[{key!r}] sets {m.group(0).strip().split(':')[0].split('=')[0]!r}"
                            " to a literal value",
                            "reference an env var fed from a Secret instead "
                            "(LiteLLM: os.environ/NAME)",
                        )
                    )
        return out
    allowed = _allowed_plain(obj)
    for init, group in ((False, main_containers(obj)), (True, init_containers(obj))):
        for c in group:
            for e in c.get("env") or []:
                name, value = e.get("name", ""), e.get("value")
                if not isinstance(value, str) or not value or name in allowed:
                    continue
                kind = _credential_kind(value)
                if _SECRET_NAME.search(name):
                    problem = f"env {name} has a plain value (its name says it is a secret)"
                elif kind:
                    problem = f"env {name} holds {kind} in plain text"
                else:
                    continue
                fix = fix_env + (
                    f" (or, if it is not a secret, list it in the {ALLOW_PLAIN_ENV_ANNOTATION} "
                    "annotation)"
                    if not kind
                    else ""
                )
                out.append(violation("plain-secrets", obj, problem, fix, cname(c, init)))
            argv = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
            for i, arg in enumerate(argv):
                literal = None
                flag, _, inline = arg.partition("=")
                if _SECRET_FLAG.match(flag) and inline and not inline.startswith("$("):
                    literal = flag
                elif (
                    _SECRET_FLAG.match(arg)
                    and i + 1 < len(argv)
                    and not argv[i + 1].startswith("$(")
                ):
                    literal = arg
                kind = _credential_kind(arg)
                if literal or kind:
                    out.append(
                        violation(
                            "plain-secrets",
                            obj,
                            "command line passes " + (kind or f"a literal {literal!r} value"),
                            "pass it as $(VAR) from an env var fed by a Secret",
                            cname(c, init),
                        )
                    )
    return out
