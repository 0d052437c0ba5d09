"""The gate report: one self-contained HTML file and its JSON twin per run, JUnit XML beside.

``records``: what suites add (load records, test properties); ``collector``: what a run did;
``svg`` and ``load_charts``: the charts; ``page``: the HTML and JSON; ``plugin``: the pytest
side; ``cleanup``: the previous run's outputs go; ``failures``: diagnostics of failed tests.
"""
