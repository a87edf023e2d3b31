"""Routes: how a message reaches a service (Segment, Customer.io Track, Pipelines)."""
