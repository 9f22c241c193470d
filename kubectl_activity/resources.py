"""RESOURCE arguments as kubectl users type them → the plural lower-case name audit events record.

Accepted: the plural (`deployments`), the singular (`deployment`), the common short names (`deploy`, `po`,
`svc`...) and any of these with a group (`deployments.apps`). Unknown names are taken as plurals if they end in
`s`, else pluralised with English rules (`networkpolicy` → `networkpolicies`), which covers most CRDs too."""

from __future__ import annotations

from dataclasses import dataclass

# kubectl's short names for the built-in resources (`kubectl api-resources`).
SHORT_NAMES = {
    "cm": "configmaps",
    "cj": "cronjobs",
    "crd": "customresourcedefinitions",
    "crds": "customresourcedefinitions",
    "csr": "certificatesigningrequests",
    "deploy": "deployments",
    "ds": "daemonsets",
    "ep": "endpoints",
    "ev": "events",
    "hpa": "horizontalpodautoscalers",
    "ing": "ingresses",
    "limits": "limitranges",
    "netpol": "networkpolicies",
    "no": "nodes",
    "ns": "namespaces",
    "pc": "priorityclasses",
    "pdb": "poddisruptionbudgets",
    "po": "pods",
    "pv": "persistentvolumes",
    "pvc": "persistentvolumeclaims",
    "quota": "resourcequotas",
    "rc": "replicationcontrollers",
    "rs": "replicasets",
    "sa": "serviceaccounts",
    "sc": "storageclasses",
    "sts": "statefulsets",
    "svc": "services",
}


@dataclass(frozen=True)
class ResourceName:
    resource: str  # plural, lower case, as objectRef.resource records it
    group: str | None  # given with `resource.group`; None: any group


def pluralise(name: str) -> str:
    if name.endswith(("ss", "sh", "ch", "x")):
        return name + "es"
    if name.endswith("s"):
        return name
    if name.endswith("y") and name[-2:-1] not in ("a", "e", "i", "o", "u"):
        return name[:-1] + "ies"
    return name + "s"


def parse_resource(text: str) -> ResourceName:
    name, _, group = text.strip().lower().partition(".")
    return ResourceName(SHORT_NAMES.get(name) or pluralise(name), group or None)
