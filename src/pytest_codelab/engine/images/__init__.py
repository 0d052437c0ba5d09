"""Images without Docker: built as docker-archives from Debian packages and files, imported
into the cluster's containerd.

Why: the local cluster has no Docker engine and no registry. ``archive`` is the format
(deterministic tar entries, the docker-archive layout), ``layers`` the layer types,
``builder`` recipes and the cache that builds them, ``recipes`` every image the cluster
runs (CodeLab's reference images and the engine's own), ``loading`` the import into
containerd. The command line is ``codelab-cluster images build|list|load``.
"""
