"""The API key caches: a flood of distinct bad keys cannot evict the valid keys a
container has cached (each real request would then cost a DynamoDB read again)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from chalicelib.clock import FixedClock
from chalicelib.domain.errors import AuthenticationError
from chalicelib.domain.models import ApiKey
from chalicelib.services.auth import CACHE_ENTRIES, NEGATIVE_CACHE_ENTRIES, ApiKeyService


class CountingKeyStore:
    """The key store's lookups, in memory, counting the reads a DynamoDB table would serve."""

    def __init__(self) -> None:
        self.keys: dict[str, ApiKey] = {}
        self.reads = 0

    def put(self, key: ApiKey) -> None:
        self.keys[key.key_hash] = key

    def find(self, key_hash: str) -> ApiKey | None:
        self.reads += 1
        return self.keys.get(key_hash)


@pytest.fixture
def store() -> CountingKeyStore:
    return CountingKeyStore()


def _service(store: CountingKeyStore) -> ApiKeyService:
    return ApiKeyService(
        cast("Any", store),
        FixedClock(datetime(2026, 1, 1, tzinfo=UTC)),
        cache_seconds=60,
        negative_cache_seconds=30,
        monotonic=lambda: 0.0,
    )


def test_a_flood_of_bad_keys_does_not_evict_a_valid_one(store: CountingKeyStore) -> None:
    service = _service(store)
    key, _ = service.mint("tenant-a", "alice")
    principal = service.authenticate(key)
    assert store.reads == 1

    flood = 20_000
    assert flood > CACHE_ENTRIES and flood > NEGATIVE_CACHE_ENTRIES
    for n in range(flood):
        with pytest.raises(AuthenticationError):
            service.authenticate(f"ac_bad_key_{n:012d}")
    assert store.reads == 1 + flood

    assert service.authenticate(key) == principal
    assert store.reads == 1 + flood  # still cached: no read


def test_the_negative_cache_is_bounded_on_its_own(store: CountingKeyStore) -> None:
    service = _service(store)
    first = "ac_bad_key_first_000"
    with pytest.raises(AuthenticationError):
        service.authenticate(first)
    with pytest.raises(AuthenticationError):
        service.authenticate(first)
    assert store.reads == 1  # remembered as bad
    for n in range(NEGATIVE_CACHE_ENTRIES):
        with pytest.raises(AuthenticationError):
            service.authenticate(f"ac_bad_key_{n:012d}")
    reads = store.reads
    with pytest.raises(AuthenticationError):
        service.authenticate(first)
    assert store.reads == reads + 1  # the oldest bad key went first
