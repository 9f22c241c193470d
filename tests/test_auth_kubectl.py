"""The real kubectl against the auth middleware: what a user sees for allowed, forbidden and unauthenticated calls."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from auth_support import CREATE_PATH, AuthWorld, FakeKubeAuthAPI, Pki, write_kubeconfig

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


async def kubectl(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        "kubectl",
        f"--kubeconfig={kubeconfig}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_kubectl_shows_forbidden_unauthorized_and_allowed(pki: Pki, tmp_path: Path) -> None:
    fake = FakeKubeAuthAPI(allowed={("alice", "get", "/apis")})
    body = tmp_path / "q.json"
    body.write_text(json.dumps({"apiVersion": "activity.miloapis.com/v1alpha1", "kind": "AuditLogQuery"}))
    async with AuthWorld(pki, fake) as world:
        alice = write_kubeconfig(tmp_path / "alice.yaml", world.url, pki.serving_ca.cert_pem, client=pki.alice)
        # (a user with no credentials at all would make kubectl prompt for a password)
        stranger = write_kubeconfig(tmp_path / "stranger.yaml", world.url, pki.serving_ca.cert_pem, token="expired")

        code, _, err = await kubectl(alice, "create", "--raw", CREATE_PATH, "-f", str(body))
        assert code == 1
        assert err.strip() == (
            'Error from server (Forbidden): auditlogqueries.activity.miloapis.com is forbidden: User "alice" '
            'cannot create resource "auditlogqueries" in API group "activity.miloapis.com" at the cluster scope'
        )

        code, _, err = await kubectl(stranger, "get", "--raw", "/apis")
        assert code == 1
        assert err.strip() == "error: You must be logged in to the server (Unauthorized)"
        assert [r["spec"]["token"] for r in fake.token_reviews] == ["expired"]

        code, out, _ = await kubectl(alice, "get", "--raw", "/apis")
        assert code == 0
        assert json.loads(out)["name"] == "alice"  # the echo handler answered, as alice
