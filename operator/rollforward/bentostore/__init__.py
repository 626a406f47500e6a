"""The bento store: S3-compatible object storage that carries bentos from a retraining Job
to the serving pods. Standard library only, so the operator image needs no AWS SDK and the
init container of a bento pod shares the same client."""
