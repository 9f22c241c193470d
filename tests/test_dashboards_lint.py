"""The committed dashboard JSON and GrafanaDashboard resources: current, sound for Grafana, valid for the operator."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from dashboards_support import GRAFANA_DASHBOARD_CRD, REPO, problems

from activity.devtools.dashboards.build import DASHBOARDS, JSON_DIR, RESOURCE_DIR, main, outputs, stale


def _committed(stem: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REPO / JSON_DIR / f"{stem}.json").read_text())
    return loaded


def test_the_committed_files_are_what_the_generator_writes() -> None:
    assert stale(REPO) == [], "run `python -m activity.devtools.dashboards.build` and commit the result"


def test_check_mode_reports_a_file_edited_by_hand(tmp_path: Path) -> None:
    assert main(["--root", str(tmp_path)]) == 0
    assert main(["--root", str(tmp_path), "--check"]) == 0
    edited = tmp_path / JSON_DIR / "apiserver.json"
    edited.write_text(edited.read_text().replace("Request rate by code", "Renamed by hand"))
    assert main(["--root", str(tmp_path), "--check"]) == 1
    assert stale(tmp_path) == [edited]


@pytest.mark.parametrize("stem", DASHBOARDS)
def test_dashboard_json_is_sound(stem: str) -> None:
    dashboard = _committed(stem)
    assert problems(dashboard) == []
    assert dashboard["uid"] == DASHBOARDS[stem].uid
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) == len(DASHBOARDS[stem].panels) >= 5


def _broken(change: str) -> dict[str, Any]:
    dashboard = copy.deepcopy(_committed("audit-activity"))
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    first, second = panels[0], panels[1]
    if change == "duplicate id":
        second["id"] = first["id"]
    elif change == "fixed datasource":
        first["targets"][0]["datasource"] = {"type": "grafana-clickhouse-datasource", "uid": "P1234"}
    elif change == "string format":
        first["targets"][0]["format"] = "table"
    elif change == "off grid":
        first["gridPos"]["x"] = 20
    elif change == "overlap":
        second["gridPos"] = dict(first["gridPos"])
    elif change == "no schemaVersion":
        del dashboard["schemaVersion"]
    elif change == "undefined variable":
        first["targets"][0]["rawSql"] += " AND verb IN (${verb:singlequote})"
    elif change == "no description":
        first["description"] = ""
    return dashboard


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("duplicate id", "is used 2 times"),
        ("fixed datasource", "'P1234' is not a datasource variable"),
        ("string format", "must be the integer 0"),
        ("off grid", "off the 24-column grid"),
        ("overlap", "overlaps panel"),
        ("no schemaVersion", "schemaVersion"),
        ("undefined variable", "undefined variable $verb"),
        ("no description", "needs a description"),
    ],
)
def test_the_lint_catches_each_mistake(change: str, message: str) -> None:
    found = problems(_broken(change))
    assert any(message in p for p in found), found


def _crd_schema() -> dict[str, Any]:
    if not GRAFANA_DASHBOARD_CRD.is_file():
        pytest.skip(f"the grafana-operator CRD is not beside the repository ({GRAFANA_DASHBOARD_CRD.name})")
    crd = yaml.safe_load(GRAFANA_DASHBOARD_CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def _resources() -> dict[str, dict[str, Any]]:
    found = {}
    for path, text in outputs(REPO).items():
        if path.parent == REPO / RESOURCE_DIR:
            found[path.name] = yaml.safe_load(text)
    return found


@pytest.mark.parametrize("stem", DASHBOARDS)
def test_grafana_dashboard_resource_validates_against_the_operator_crd(stem: str) -> None:
    schema = _crd_schema()
    resource = yaml.safe_load((REPO / RESOURCE_DIR / f"grafana-dashboard-{stem}.yaml").read_text())
    jsonschema.validate(resource, schema)
    assert (resource["apiVersion"], resource["kind"]) == ("grafana.integreatly.org/v1beta1", "GrafanaDashboard")
    # the resource carries exactly the dashboard people import by hand
    assert json.loads(resource["spec"]["json"]) == _committed(stem)
    assert resource["spec"]["uid"] == _committed(stem)["uid"]


def test_the_crd_schema_refuses_a_resource_without_instance_selector() -> None:
    schema = _crd_schema()
    resource = next(iter(_resources().values()))
    del resource["spec"]["instanceSelector"]
    with pytest.raises(jsonschema.ValidationError, match="instanceSelector"):
        jsonschema.validate(resource, schema)
