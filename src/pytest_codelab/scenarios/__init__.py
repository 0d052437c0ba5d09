"""What the cluster suites do to the stack, as library code: a load that scales the HPAs
out and back, a rollout under traffic, in-pod connectivity checks, a readiness check copy.
The suites keep the checks and the verdicts; these modules do the work and say what they saw.
"""
