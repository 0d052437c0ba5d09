"""What the gate deploys and checks offline: values and profiles, the manifests rendered
from them, generated Secrets, best-practice rules and the OpenAPI schema."""
