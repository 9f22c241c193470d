#!/usr/bin/env bash
# Deploy activity onto the current kubectl context (the kind cluster of kind-config.yaml, with deps/install.sh
# run): the kind overlay, then wait until kube-apiserver serves the aggregated API (APIService Available).
# The image the overlay names (activity:e2e) must already be on the nodes: `kind load docker-image`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
timeout="${DEPLOY_TIMEOUT:-600s}"

echo "== config/overlays/test-infra"
kubectl apply --server-side --force-conflicts -k "$root/config/overlays/test-infra"
kubectl -n activity-system rollout status --timeout="$timeout" daemonset/activity-webhook
kubectl wait --for=condition=Available --timeout="$timeout" apiservice/v1alpha1.activity.miloapis.com
echo "activity deployed: APIService v1alpha1.activity.miloapis.com is Available"
