"""The local cluster engine: builds, starts and stops a Kubernetes cluster on this machine."""
