"""Every alert has a runbook (docs/runbooks/<alert>.md, linked by its runbook_url) and every runbook an alert; the
runbooks say how to confirm with kubectl and name dashboard panels that exist."""

from __future__ import annotations

import re

from alert_rules_support import RUNBOOKS, alerts

from activity.devtools.dashboards.build import DASHBOARDS

INDEX = RUNBOOKS / "README.md"
SECTIONS = ("## Meaning", "## Impact", "## Confirm", "## Act")


def _runbooks() -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted(RUNBOOKS.glob("*.md")) if p != INDEX}


def test_every_alert_has_a_runbook_and_every_runbook_an_alert() -> None:
    named = {rule["alert"] for rule in alerts()}
    assert set(_runbooks()) == named


def test_every_alert_links_its_own_runbook() -> None:
    for rule in alerts():
        url = rule["annotations"]["runbook_url"]
        assert url == f"docs/runbooks/{rule['alert']}.md", rule["alert"]
        assert (RUNBOOKS.parent.parent / url).is_file()


def test_every_runbook_says_what_it_means_how_to_confirm_and_what_to_do() -> None:
    for alert, text in _runbooks().items():
        assert text.startswith(f"# {alert}\n"), alert
        positions = [text.find(section + "\n") for section in SECTIONS]
        assert -1 not in positions and positions == sorted(positions), f"{alert}: sections {SECTIONS} in order"
        confirm = text[positions[2] : positions[3]]
        assert "kubectl " in confirm or "nats " in confirm, f"{alert}: confirm with a command"


def test_the_panels_a_runbook_names_exist() -> None:
    titles = {panel.title for dashboard in DASHBOARDS.values() for panel in dashboard.panels}
    dashboards = {dashboard.title for dashboard in DASHBOARDS.values()}
    for alert, text in _runbooks().items():
        flat = " ".join(text.split())  # a reference may wrap
        for title in re.findall(r'panel "([^"]+)"', flat):
            assert title in titles, f"{alert}: no panel {title!r}"
        for title in re.findall(r"\*(Activity / [^*]+)\*", flat):
            assert title in dashboards, f"{alert}: no dashboard {title!r}"


def test_links_between_runbooks_resolve() -> None:
    for path in [INDEX, *(RUNBOOKS / f"{a}.md" for a in _runbooks())]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text()):
            if "://" not in target:
                assert (path.parent / target).resolve().is_file(), f"{path.name}: broken link {target}"


def test_the_index_lists_every_runbook() -> None:
    index = INDEX.read_text()
    for alert in _runbooks():
        assert f"[{alert}]({alert}.md)" in index


def test_the_deploy_guide_is_linked_from_the_readme_and_its_links_resolve() -> None:
    readme = (RUNBOOKS.parent.parent / "README.md").read_text()
    assert "](docs/deploy.md)" in readme
    guide = RUNBOOKS.parent / "deploy.md"
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", guide.read_text()):
        if "://" not in target:
            assert (guide.parent / target).resolve().is_file(), f"deploy.md: broken link {target}"
    for anchor in re.findall(r"\]\(\.\./deploy\.md#([^)]+)\)", " ".join(p.read_text() for p in RUNBOOKS.glob("*.md"))):
        headings = re.findall(r"^#+ (.+)$", guide.read_text(), re.MULTILINE)
        assert anchor in {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}, anchor
