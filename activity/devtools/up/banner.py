"""What `activity up` prints once everything runs: where each part listens and the exact commands to try next."""

from __future__ import annotations

import shlex

from activity.devtools.up.demo import BURST_SPAN, TRICKLE_RATE, DemoTraffic
from activity.devtools.up.layout import DEFAULT_PORT_BASE, HOST
from activity.devtools.up.stack import Stack

READY_LINE = "Activity is up."  # the first line: scripts and tests wait for it


def _q(value: object) -> str:
    return shlex.quote(str(value))


def try_commands(stack: Stack) -> list[str]:
    """kubectl refuses flags before a plugin's name, so --kubeconfig goes after the subcommand."""
    data = stack.settings.data
    kubeconfig = f"--kubeconfig {_q(data.kubeconfig)}"
    demo = stack.demo
    if demo is not None:
        obj = demo.busiest_object()
        history = f"history {obj.resource} {obj.name} -n {obj.namespace} --diff"
    else:
        history = "history RESOURCE NAME -n NAMESPACE --diff"
    return [
        f"kubectl {kubeconfig} get --raw /apis/activity.miloapis.com/v1alpha1",
        f"kubectl activity query {kubeconfig}",
        f"kubectl activity query {kubeconfig} --filter \"verb == 'delete' && objectRef.namespace == 'prod'\"",
        f"kubectl activity {history} {kubeconfig}",
        f"kubectl activity summary {kubeconfig} --by user",
        f"activity loadgen --webhook {stack.webhook_url} --events 2000",
    ]


def _demo_line(demo: DemoTraffic) -> str:
    hours = BURST_SPAN.total_seconds() / 3600
    return (
        f"  demo traffic  {demo.burst.events:,} events over the last {hours:g} h ({demo.stored_by_burst:,} stored: "
        f"the consumer keeps ResponseComplete), then {TRICKLE_RATE:g} events/s"
    )


def banner(stack: Stack) -> str:
    s = stack.settings
    p, data = s.ports, s.data
    nats_pid = stack.nats.process.pid if stack.nats and stack.nats.process else "?"
    lines = [
        READY_LINE,
        "",
        f"  webhook       {stack.webhook_url}  (cluster {s.cluster}; point kube-apiserver's audit webhook here)",
        f"  API server    {stack.apiserver_url}  (activity.miloapis.com/v1alpha1, TLS, client certificates)",
        f"  nats-server   nats://{HOST}:{p.nats}  (PID {nats_pid}, JetStream in {data.nats})",
        f"  store         {data.store_dsn}",
        f"  metrics       http://{HOST}:{p.webhook}/metrics (webhook), http://{HOST}:{p.apiserver_metrics}/metrics "
        f"(API server), http://{HOST}:{p.consumer_probes}/metrics (consumer)",
        f"  kubeconfig    {data.kubeconfig}",
        f"  logs          {data.log}",
    ]
    if stack.demo is not None:
        lines.append(_demo_line(stack.demo))
    lines += ["", "Try:", *(f"  {command}" for command in try_commands(stack)), ""]
    again = f"activity up --data-dir {_q(data.root)}" + (
        f" --port-base {p.base}" if p.base != DEFAULT_PORT_BASE else ""
    )
    lines.append(f"Ctrl-C stops everything; `{again}` again keeps the data.")
    return "\n".join(lines)
