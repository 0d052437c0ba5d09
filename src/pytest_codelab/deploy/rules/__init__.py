"""Offline best-practice rules for rendered manifests: ``base`` (Rule, SetRule, Violation),
the rules by concern (``containers``, ``plain_secrets``, ``hpa``, ``references``) and
``registry`` (every rule with its id and requirement; check_object, check_objects)."""
