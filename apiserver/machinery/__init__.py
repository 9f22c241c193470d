"""The Kubernetes HTTP plumbing of the API server: Status errors, discovery, OpenAPI, health, metrics, tracing."""
