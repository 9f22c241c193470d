"""`kubectl activity`: the kubectl plugin for the Activity audit-log API (found by kubectl as the
`kubectl-activity` executable on PATH). Subcommands: query, history, summary."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from auditlog.fields import table_fields
from auditlog.paging import DEFAULT_LIMIT, MAX_PAGE_SIZE
from kubectl_activity.errors import PluginError
from kubectl_activity.filters import WRITE_VERBS, Selection, combine, split_values
from kubectl_activity.output import FORMATS, OutputFormat
from kubectl_activity.resources import SHORT_NAMES, parse_resource
from kubectl_activity.summary import DIMENSIONS

if TYPE_CHECKING:  # the client (ssl, http.client) is imported when a command runs, not for --help
    from kubectl_activity.client import ActivityClient

DEFAULT_MAX_EVENTS = 50_000

TOP = """Query the Kubernetes audit log served by the Activity API (AuditLogQuery, activity.miloapis.com/v1alpha1).

The plugin acts as the identity kubectl would: the current context of $KUBECONFIG (its files merged as kubectl
merges them) or ~/.kube/config, with client certificates, tokens, token files, username/password, exec
credential plugins and impersonation (as, as-groups, as-uid, as-user-extra). kubectl's global flags go after the
command (kubectl refuses flags before a plugin's name) and mean what they mean to kubectl; --user is the
kubeconfig user (filter by who made a request with --actor), -n the namespace of the events' objects (the
context's namespace is not implied: a query spans every namespace unless -n). A kubeconfig field the plugin
cannot honour (auth-provider, a SOCKS or HTTPS proxy) is refused with an error, never replaced by another
identity.

Times: RFC3339 (2026-01-02T15:04:05Z), `now`, or `now-<n><s|m|h|d|w>` (now-90m, now-7d); windows are
[start, end) and at most the server's --max-query-window (30d by default)."""

EXAMPLES = """examples:
  kubectl activity query                                  # the newest events of the last 24 hours
  kubectl activity query --writes-only --exclude-system   # what people changed
  kubectl activity query -n prod --resource secrets --verb get,list
  kubectl activity query --filter "responseStatus.code >= 400" -o wide
  kubectl activity query --start-time now-7d --all-pages -o json > week.json
  kubectl activity history deployment web -n prod --diff
  kubectl activity summary --by user --top 5 --start-time now-1h
  kubectl activity query --as alice@example.com -v=6      # what alice may see; log each request"""

QUERY_HELP = f"""Events newest first, one page at a time (--limit per page). When more exist, stderr shows the exact
command for the next page; --all-pages fetches them all.

The convenience flags are turned into CEL clauses, ANDed together and with --filter; values are quoted as CEL
strings, so quotes or backslashes in them are matched literally. --filter takes any CEL expression over the
audit-event fields (see `kubectl explain auditlogquery.spec.filter`), e.g.
  verb == 'delete' && objectRef.resource == 'secrets'
  user.groups.exists(g, g == 'system:masters')

Output (-o): {", ".join(FORMATS)}.
  table: columns {" ".join(f.header for f in table_fields())};
  wide adds {", ".join(f.header for f in table_fields(wide=True) if f not in table_fields())}.
  json/yaml: a kubectl List of the events (items); metadata.continue holds the next-page token.
  jsonpath: kubectl's template syntax over that List, e.g. -o jsonpath='{{.items[*].user.username}}' or
  -o jsonpath='{{range .items[*]}}{{.verb}}{{"\\t"}}{{.objectRef.name}}{{"\\n"}}{{end}}'.
  name: resource[.group]/name of each event's object (events without an object name are skipped)."""

HISTORY_HELP = f"""The writes ({", ".join(WRITE_VERBS)}) to one object, oldest first: time, verb, user and
status of each (completed requests only: stage ResponseComplete).

RESOURCE may be plural (deployments), singular (deployment), a kubectl short name ({", ".join(sorted(SHORT_NAMES))})
or any of these with a group (deployments.apps). Without -n, the object is looked for in every namespace (and
-n is asked for if objects of that name changed in several).

--diff prints the object after each change as a unified diff against the previous version, taken from the
event's responseObject (or the requestObject of a create/update): "Initial state" first, "metadata only" when
only metadata changed. The audit policy must record the object (level Request or RequestResponse) for diffs;
colours only on a terminal."""

SUMMARY_HELP = """Top-N request counts in a window, by user, verb, resource or namespace.

The Activity API has no facet (group-by) query, so the plugin computes the counts itself by paging through the
events of the window: exact for what it scanned, capped by --max-events (a progress line on stderr shows the
scan). Each request counts once (by auditID) whichever stages were recorded. Narrow the window or add filter
flags to summarise a busy cluster faster."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks and shows the defaults that say something."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        shown = action.default not in (None, False, [], "", argparse.SUPPRESS) and action.option_strings
        return f"{action.help} (default: %(default)s)" if shown else action.help


def _verbosity(text: str) -> int:
    try:
        return int(text.lstrip("="))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid log level {text!r}: write a number like 6") from None


def _connection_flags(parser: argparse.ArgumentParser, default: object) -> None:
    """kubectl's global flags, with kubectl's meaning (kubectl refuses them before a plugin's name)."""
    group = parser.add_argument_group("kubectl's global flags (same meaning as in kubectl)")

    def flag(*names: str, **options: Any) -> None:
        group.add_argument(*names, default=default, **options)

    flag("--kubeconfig", help="kubeconfig file (default: the files of $KUBECONFIG, merged, or ~/.kube/config)")
    flag("--context", help="kubeconfig context to use (default: the current one)")
    flag("--cluster", help="kubeconfig cluster to use (default: the context's)")
    flag("--user", help="kubeconfig user to use (default: the context's); filter by requester with --actor")
    flag("-s", "--server", help="the address of the Kubernetes API server")
    flag("--tls-server-name", help="server name to verify the server's certificate against (and send as SNI)")
    flag("--certificate-authority", metavar="FILE", help="a CA bundle to verify the server with")
    flag("--insecure-skip-tls-verify", action="store_true", help="do not verify the server's certificate")
    flag("--client-certificate", metavar="FILE", help="a client certificate for TLS")
    flag("--client-key", metavar="FILE", help="the client certificate's key")
    flag("--token", help="bearer token to authenticate with")
    flag("--as", dest="impersonate", metavar="USER", help="user to impersonate for the request")
    flag(
        "--as-group",
        dest="impersonate_groups",
        metavar="GROUP",
        action="append",
        help="group to impersonate (repeatable)",
    )
    flag("--as-uid", dest="impersonate_uid", metavar="UID", help="UID to impersonate")
    flag(
        "--request-timeout",
        metavar="DURATION",
        help="give up on a request after this long: a Go duration "
        "(1m30s, 500ms) or whole seconds; 0 waits forever (default: 0)",
    )
    flag(
        "-v",
        "--v",
        dest="verbosity",
        type=_verbosity,
        metavar="LEVEL",
        help="log the HTTP requests: 6 each request, 7 its headers, 8 the bodies (Authorization masked)",
    )


def _window_flags(parser: argparse.ArgumentParser, start: str) -> None:
    parser.add_argument("--start-time", default=start, help="start of the window (inclusive)")
    parser.add_argument("--end-time", default="now", help="end of the window (exclusive)")


def _filter_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters (ANDed together and with --filter)")
    group.add_argument("--filter", default="", help="a CEL expression over the audit-event fields")
    group.add_argument(
        "--actor", action="append", default=[], help="who made the request: user name, exact (repeatable, or a,b)"
    )
    group.add_argument("--verb", action="append", default=[], help="verb (repeatable, or get,list)")
    group.add_argument("-n", "--namespace", help="namespace of the object")
    group.add_argument("--resource", help="resource as audit events record it: plural, lower case (pods)")
    group.add_argument("--name", help="name of the object")
    group.add_argument("--exclude-system", action="store_true", help="hide requests by system:* users")
    group.add_argument("--writes-only", action="store_true", help=f"only {', '.join(WRITE_VERBS)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl activity", description=TOP, epilog=EXAMPLES, formatter_class=HelpFormatter
    )
    _connection_flags(parser, None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary_line: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name, help=summary_line, description=text, epilog=EXAMPLES, formatter_class=HelpFormatter
        )
        _connection_flags(sub, argparse.SUPPRESS)  # given here or before the command name
        return sub

    query = command("query", "list audit events", QUERY_HELP)
    _window_flags(query, "now-24h")
    _filter_flags(query)
    query.add_argument(
        "--limit",
        type=int,
        help=f"events per page (default: the server's, {DEFAULT_LIMIT}; with --all-pages the largest the server "
        f"allows, {MAX_PAGE_SIZE} by default)",
    )
    query.add_argument("--continue-after", default="", metavar="TOKEN", help="the next-page token a page printed")
    query.add_argument("--all-pages", action="store_true", help="fetch every page of the window")
    query.add_argument("-o", "--output", default="table", help=f"one of: {', '.join(FORMATS)}")
    query.set_defaults(handler=run_query)

    changes = command("history", "the changes to one object, oldest first", HISTORY_HELP)
    changes.add_argument("resource", metavar="RESOURCE", help="deployments, deployment, deploy, deployments.apps...")
    changes.add_argument("name", metavar="NAME", help="name of the object")
    changes.add_argument("-n", "--namespace", help="namespace of the object (needed if the name is in several)")
    changes.add_argument("--diff", action="store_true", help="show how the object changed at each write")
    _window_flags(changes, "now-30d")
    changes.set_defaults(handler=run_history)

    top = command("summary", "top-N request counts by user, verb, resource or namespace", SUMMARY_HELP)
    _window_flags(top, "now-24h")
    _filter_flags(top)
    top.add_argument("--by", choices=sorted(DIMENSIONS), default="user", help="what to count by")
    top.add_argument("--top", type=int, default=10, metavar="N", help="how many rows to show")
    top.add_argument("--max-events", type=int, default=DEFAULT_MAX_EVENTS, help="stop scanning after this many")
    top.set_defaults(handler=run_summary)
    return parser


def _selection(args: argparse.Namespace) -> Selection:
    return Selection(
        users=tuple(split_values(args.actor)),
        verbs=tuple(split_values(args.verb)),
        namespace=args.namespace,
        resource=args.resource,
        name=args.name,
        exclude_system=args.exclude_system,
        writes_only=args.writes_only,
    )


def _client(args: argparse.Namespace) -> ActivityClient:
    from kubectl_activity.client import ActivityClient
    from kubectl_activity.durations import DurationError, parse_request_timeout
    from kubectl_activity.kubeconfig import Overrides

    try:
        timeout_ns = parse_request_timeout(args.request_timeout or "0")
    except DurationError as err:
        raise PluginError(f"error: --request-timeout: {err}") from None
    overrides = Overrides(
        kubeconfig=args.kubeconfig,
        context=args.context,
        cluster=args.cluster,
        user=args.user,
        server=args.server,
        tls_server_name=args.tls_server_name,
        certificate_authority=args.certificate_authority,
        insecure_skip_tls_verify=bool(args.insecure_skip_tls_verify),
        client_certificate=args.client_certificate,
        client_key=args.client_key,
        token=args.token,
        impersonate=args.impersonate,
        impersonate_groups=tuple(args.impersonate_groups or ()),
        impersonate_uid=args.impersonate_uid,
    )
    return ActivityClient(overrides, verbosity=args.verbosity or 0, timeout_ns=timeout_ns)


def next_page_command(argv: Sequence[str], token: str) -> str:
    """The command line that was run, with --continue-after set to `token`."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--continue-after":
            skip = True
        elif not arg.startswith("--continue-after="):
            kept.append(arg)
    return " ".join(map(shell_quote, ["kubectl", "activity", *kept, "--continue-after", token]))


def shell_quote(arg: str) -> str:
    """POSIX-shell quoting that stays readable: a CEL filter full of 'single quotes' is wrapped in double quotes
    when nothing in it is special there, instead of shlex's '"'"' splices."""
    quoted = shlex.quote(arg)
    if quoted == arg or "'" not in arg or any(c in arg for c in '"$`\\!'):
        return quoted
    return f'"{arg}"'


def run_query(args: argparse.Namespace) -> int:
    from kubectl_activity.client import QueryRequest
    from kubectl_activity.output import EventPrinter
    from kubectl_activity.progress import Progress

    output = OutputFormat.parse(args.output)
    if args.limit is not None and args.limit < 1:
        raise PluginError("error: --limit must be at least 1")
    # One page: the server's default unless --limit. Every page: as few round trips as the server allows, unless
    # continuing a query whose token fixed the page size (the server refuses another one).
    upsize = args.all_pages and args.limit is None and not args.continue_after
    limit = MAX_PAGE_SIZE if upsize else args.limit
    request = QueryRequest(
        args.start_time, args.end_time, combine(_selection(args), args.filter), limit, args.continue_after
    )
    printer = EventPrinter(output)
    with _client(args) as client:
        if not args.all_pages:
            page = client.query(request)
            printer.page(page.events)
            printer.finish(page.continue_token)
            if page.continue_token:
                sys.stderr.write(f"More results; next page:\n  {next_page_command(args.argv, page.continue_token)}\n")
            return 0
        progress = Progress()
        line = ""
        for pages, page in enumerate(client.pages(request, fit_limit=upsize), start=1):
            progress.clear()
            printer.page(page.events)
            more = ", more to come" if page.continue_token else ""
            line = f"page {pages}: {printer.printed} events{more}"
            progress.update(line)
        progress.done(line)
        printer.finish()
    return 0


def run_history(args: argparse.Namespace) -> int:
    from rich.console import Console

    from kubectl_activity import history
    from kubectl_activity.client import QueryRequest

    target = parse_resource(args.resource)
    selection = Selection(
        resource=target.resource,
        api_group=target.group,
        name=args.name,
        namespace=args.namespace,
        writes_only=True,
        stage="ResponseComplete",
    )
    request = QueryRequest(args.start_time, args.end_time, combine(selection), MAX_PAGE_SIZE)
    events = []
    with _client(args) as client:
        for page in client.pages(request, fit_limit=True):
            events.extend(page.events)
    where = f" in namespace {args.namespace}" if args.namespace else ""
    if not events:
        sys.stderr.write(
            f"No changes to {target.resource}/{args.name}{where} between {args.start_time} and {args.end_time}\n"
        )
        return 0
    namespaces = sorted({str((e.get("objectRef") or {}).get("namespace") or "") for e in events})
    if len(namespaces) > 1:  # versions of different objects would be diffed against each other
        raise PluginError(
            f"error: {target.resource}/{args.name} was changed in several namespaces ({', '.join(namespaces)}): "
            "choose one with -n"
        )
    console = Console(highlight=False, soft_wrap=True, markup=False)
    items = history.changes(events)
    if args.diff:
        history.render_diffs(items, console)
    else:
        history.render_list(items, console)
    return 0


def run_summary(args: argparse.Namespace) -> int:
    from kubectl_activity.client import QueryRequest
    from kubectl_activity.output import print_table
    from kubectl_activity.progress import Progress
    from kubectl_activity.summary import Tally

    if args.top < 1 or args.max_events < 1:
        raise PluginError("error: --top and --max-events must be at least 1")
    request = QueryRequest(
        args.start_time, args.end_time, combine(_selection(args), args.filter), min(MAX_PAGE_SIZE, args.max_events)
    )
    tally = Tally(DIMENSIONS[args.by])
    progress = Progress()
    capped = False
    window = ""
    with _client(args) as client:
        for page in client.pages(request, fit_limit=True):
            tally.add(page.events)
            window = window or f"{page.effective_start_time} .. {page.effective_end_time}"
            progress.update(f"scanned {tally.scanned} events")
            if page.continue_token and tally.scanned >= args.max_events:
                capped = True
                break
    progress.done(f"scanned {tally.scanned} events")
    requests = tally.requests
    rows = [[value, str(count), f"{100 * count / requests:.1f}%"] for value, count in tally.top(args.top)]
    if rows:
        print_table(rows, [tally.dimension.header, "REQUESTS", "SHARE"], sys.stdout)
    print(
        f"\n{requests} requests in {tally.scanned} events scanned, window {window}. Counted by the plugin from the "
        "event pages: the API has no facet query."
    )
    if capped:
        print(f"Stopped at --max-events={args.max_events}: the counts cover the newest events of the window only.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    args.argv = arguments
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except PluginError as err:
        sys.stderr.write(f"{err}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `| head` closed the pipe: not an error worth a message
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor is the flush at exit
        return 0
    except Exception as err:  # the last resort: one line, never a traceback
        sys.stderr.write(f"error: unexpected {type(err).__name__}: {err}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
