"""The resources this server serves, one package each (Kubernetes' pkg/registry)."""
