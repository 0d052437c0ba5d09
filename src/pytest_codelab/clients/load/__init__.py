"""Locust load against the stack: ``spec`` (a bounded run), ``locust`` (the runner),
``results`` (what it measured), ``workers`` (distributed: worker pods in the namespace)."""
