#!/usr/bin/env bash
# Install what the activity manifests need on a cluster, at pinned versions, and wait until it is ready:
# cert-manager, a JetStream nats-server, NACK and the Altinity ClickHouse operator.
# Uses the current kubectl context (KUBECONFIG). Idempotent: run it again to converge.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
timeout="${DEPS_TIMEOUT:-300s}"

apply() {  # server-side: the CRDs are too big for client-side apply's last-applied annotation
  echo "== $1"
  kubectl apply --server-side --force-conflicts -k "$here/$1"
}

apply cert-manager
apply nats
apply nack
apply clickhouse-operator

kubectl wait --for=condition=Established --timeout="$timeout" \
  crd/certificates.cert-manager.io crd/issuers.cert-manager.io \
  crd/streams.jetstream.nats.io crd/consumers.jetstream.nats.io \
  crd/clickhouseinstallations.clickhouse.altinity.com
kubectl -n cert-manager wait --for=condition=Available --timeout="$timeout" deployment --all
kubectl -n nats rollout status --timeout="$timeout" statefulset/nats
kubectl -n nats wait --for=condition=Available --timeout="$timeout" deployment/jetstream-controller
kubectl -n kube-system wait --for=condition=Available --timeout="$timeout" deployment/clickhouse-operator
echo "dependencies ready"
