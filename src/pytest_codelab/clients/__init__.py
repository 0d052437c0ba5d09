"""Clients of the deployed stack: HTTP through the ingress, continuous traffic, Locust load
and the HPA timeline sampled while it runs."""
