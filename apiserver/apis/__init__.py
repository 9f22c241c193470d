"""API types, one package per group and version (Kubernetes' pkg/apis): what a resource is, not how it is served."""
