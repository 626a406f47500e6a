"""The bento store's client side, shared by the pods and the operator: S3-compatible object
storage over the standard library (so neither image needs an AWS SDK), the key layout of a
stored bento and the environment that locates the store. Imports nothing of the operator."""
