"""Drift detection on the distribution of predicted labels.

`statistics` turns label counts into a Drift / NoDrift / Inconclusive verdict, `hysteresis`
turns a sequence of verdicts into the `Drifted` condition. Both are pure: no I/O, no clock.
`simulation` holds the no-drift and shift simulations used by the tests and the bench; it
needs numpy, so the operator never imports it.
"""
