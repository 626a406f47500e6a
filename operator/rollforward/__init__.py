"""Rollforward: a Kubernetes operator that keeps machine-learning models healthy in production."""

__version__ = "0.1.0"
