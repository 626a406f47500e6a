"""Traffic routers: one module per way of splitting traffic between a model's variants."""
