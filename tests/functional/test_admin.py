"""The operator commands mint, list and revoke keys against the real key store."""

from __future__ import annotations

from typing import Any

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
