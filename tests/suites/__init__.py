"""Chain suites of the example runtime, run against a network by `invoke test` (pipeline.suites).

Not part of the pipeline's own test run: pyproject's `norecursedirs` keeps pytest out of here.
"""
