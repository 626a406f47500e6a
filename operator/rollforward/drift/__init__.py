"""Drift detection on the distribution of predicted labels.

`statistics` turns label counts into a Drift / NoDrift / Inconclusive verdict, `hysteresis`
turns a sequence of verdicts into the `Drifted` condition. Both are pure: no I/O, no clock.
`check` runs one check of one resource on query results. The no-drift and shift simulations
used by the tests and the bench live outside the product, in hack/devenv/drift_simulation.py.
"""
