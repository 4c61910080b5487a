"""The operator commands mint, list and revoke keys against the real key store."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.admin import main
from tests.helpers import JSONClient


def test_create_list_and_revoke_a_key(container: Any, client: Any, capsys: Any) -> None:
    assert (
        main(
            ["create-key", "--tenant", "acme", "--user", "alice", "--description", "ci"], container
        )
        == 0
    )
    out = capsys.readouterr().out
    key = out.split("api key (shown once): ")[1].strip()
    key_id = out.split("key_id: ")[1].split()[0]
    assert key.startswith("ac_") and len(key) > 40
    api = JSONClient(client, key)
    assert api.get("/api/v1/schedules")[0] == 200

    assert main(["list-keys", "--tenant", "acme"], container) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and "alice" in listing and "active" in listing
    assert key not in listing  # the key itself is never stored or shown again

    assert main(["revoke-key", "--tenant", "acme", "--key-id", key_id], container) == 0
    assert api.get("/api/v1/schedules") == (401, {"error": "Invalid token"})
    assert main(["revoke-key", "--tenant", "acme", "--key-id", key_id], container) == 1
    assert main(["revoke-key", "--tenant", "other", "--key-id", key_id], container) == 1


def test_bad_identifiers_are_refused(container: Any, capsys: Any) -> None:
    assert main(["create-key", "--tenant", "a#b", "--user", "u"], container) == 2
    assert "tenant must be" in capsys.readouterr().err


def test_bootstrap_is_idempotent(container: Any, capsys: Any) -> None:
    assert main(["bootstrap"], container) == 0
    assert main(["bootstrap"], container) == 0
    assert "ready" in capsys.readouterr().out


def test_monthly_cap_overrides(container: Any, capsys: Any) -> None:
    from decimal import Decimal

    from chalicelib.domain.caps import CapDefaults

    run = ["set-cap", "--tenant", "acme"]
    assert main([*run, "--monthly-usd", "500"], container) == 0
    assert main([*run, "--user", "alice", "--monthly-usd", "25.5"], container) == 0
    assert main([*run, "--user", "bob", "--unlimited"], container) == 0
    assert "monthly cap unlimited" in capsys.readouterr().out
    store = container.spend_store
    [user, tenant] = store.caps_for("acme", "alice", CapDefaults(user_usd=Decimal(1)))
    assert (user.scope.value, user.monthly_usd) == ("user", Decimal("25.5"))
    assert (tenant.scope.value, tenant.monthly_usd) == ("tenant", Decimal(500))
    # bob is unlimited whatever the default; carol gets the default.
    [bob_tenant] = store.caps_for("acme", "bob", CapDefaults(user_usd=Decimal(1)))
    assert bob_tenant.scope.value == "tenant"
    carol = store.caps_for("acme", "carol", CapDefaults(user_usd=Decimal(1)))
    assert [c.monthly_usd for c in carol] == [Decimal(1), Decimal(500)]

    assert main(["show-caps", "--tenant", "acme", "--user", "alice"], container) == 0
    shown = capsys.readouterr().out
    assert "override tenant: $500" in shown and "override user alice: $25.5" in shown
    assert "override user bob: none" in shown
    assert "user cap $25.5, used $0" in shown and "remaining $25.5" in shown

    assert main([*run, "--user", "alice", "--clear"], container) == 0
    assert [c.scope.value for c in store.caps_for("acme", "alice", CapDefaults())] == ["tenant"]
    assert main([*run, "--user", "a#b", "--monthly-usd", "1"], container) == 2
    assert "user must be" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*run, "--monthly-usd", "-1"], container)
