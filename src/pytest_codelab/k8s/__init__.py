"""Kubernetes helpers of the gate: API client and preflight, waits, namespaces, the stack,
pod tools and failure diagnostics. They know Kubernetes, never pytest's hooks or suites."""
