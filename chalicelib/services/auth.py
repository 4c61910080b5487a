"""API keys: minting, revocation and request authentication.

Keys are random (``ac_`` + 32 bytes, URL-safe) and stored only as their SHA-256
digest, mapped to (tenant, user). Authentication hashes the presented key, looks the
digest up, and compares digests with :func:`hmac.compare_digest`. Successful
lookups are cached in-process for ``API_KEY_CACHE_SECONDS`` (like an API Gateway
authorizer's result cache) so a request costs its own AWS calls and no more; a
revocation therefore takes effect within that many seconds.

Unknown and revoked keys are cached too (``API_KEY_NEGATIVE_CACHE_SECONDS``), so a
client hammering with a bad key costs one DynamoDB read per container and period, not
one per request; keys that cannot be ours (wrong length) cost none. The two caches are
separate and each bounded (:data:`CACHE_ENTRIES` valid keys, :data:`NEGATIVE_CACHE_ENTRIES`
invalid ones; the oldest entries go first): a flood of distinct keys cannot grow a
container's memory, and — the negative cache having its own bound — cannot evict the
valid keys either (every real request would then cost a read again). Minting a key in
this process forgets any negative entry for it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib import observability
from chalicelib.domain.errors import AuthenticationError, InvalidRequestError
from chalicelib.domain.models import ApiKey, Principal
from chalicelib.domain.ports import Clock

if TYPE_CHECKING:
    from chalicelib.adapters.dynamodb_keys import DynamoDBApiKeyStore

KEY_PREFIX = "ac_"
IDENTIFIER = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MAX_KEY_CHARS = 256
MIN_KEY_CHARS = 16
CACHE_ENTRIES = 10_000
NEGATIVE_CACHE_ENTRIES = 10_000


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_identifier(kind: str, value: str) -> str:
    if not IDENTIFIER.match(value):
        raise InvalidRequestError(
            f"{kind} must be 1-64 characters of letters, digits, '.', '_', '@' or '-'"
        )
    return value


class ApiKeyService:
    def __init__(
        self,
        store: DynamoDBApiKeyStore,
        clock: Clock,
        *,
        cache_seconds: float,
        negative_cache_seconds: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._negative_seconds = negative_cache_seconds
        self._monotonic = monotonic
        # digest -> (principal, expiry); digest -> expiry of a key known to be invalid
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._negative: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def mint(
        self, tenant_id: str, user_id: str, *, description: str = "", key: str | None = None
    ) -> tuple[str, ApiKey]:
        """Create a key; returns the plaintext (shown once) and the stored record."""
        check_identifier("tenant", tenant_id)
        check_identifier("user", user_id)
        plaintext = key if key is not None else KEY_PREFIX + secrets.token_urlsafe(32)
        if not MIN_KEY_CHARS <= len(plaintext) <= MAX_KEY_CHARS:
            raise InvalidRequestError(
                f"an API key must be {MIN_KEY_CHARS}-{MAX_KEY_CHARS} characters"
            )
        digest = hash_key(plaintext)
        record = ApiKey(
            key_hash=digest,
            key_id=digest[:12],
            tenant_id=tenant_id,
            user_id=user_id,
            created_at=self._clock.now(),
            description=description,
        )
        self._store.put(record)
        self._forget(digest)
        return plaintext, record

    def revoke(self, tenant_id: str, key_id: str) -> bool:
        for record in self._store.list_for_tenant(tenant_id):
            if record.key_id == key_id and record.revoked_at is None:
                self._forget(record.key_hash)
                return self._store.revoke(record.key_hash, self._clock.now())
        return False

    def list_for_tenant(self, tenant_id: str) -> list[ApiKey]:
        return self._store.list_for_tenant(tenant_id)

    def authenticate(self, presented: str | None) -> Principal:
        """The key's (tenant, user); they become the request's log keys (never the key)."""
        principal = self._lookup(presented)
        observability.bind(tenant=principal.tenant_id, user=principal.user_id)
        return principal

    def _lookup(self, presented: str | None) -> Principal:
        if not presented:
            raise AuthenticationError(missing=True)
        if not MIN_KEY_CHARS <= len(presented) <= MAX_KEY_CHARS:
            raise AuthenticationError(missing=False)  # cannot be a key: no read
        digest = hash_key(presented)
        now = self._monotonic()
        with self._lock:
            cached = self._cache.get(digest)
            known_bad = self._negative.get(digest, now) > now
        if cached is not None and cached[1] > now:
            return cached[0]
        if known_bad:
            raise AuthenticationError(missing=False)
        record = self._store.find(digest)
        if (
            record is None
            or record.revoked_at is not None
            or not hmac.compare_digest(record.key_hash, digest)
        ):
            if self._negative_seconds > 0:
                self._remember(self._negative, digest, now + self._negative_seconds)
            raise AuthenticationError(missing=False)
        principal = Principal(tenant_id=record.tenant_id, user_id=record.user_id)
        if self._cache_seconds > 0:
            self._remember(self._cache, digest, (principal, now + self._cache_seconds))
        return principal

    def _remember(self, cache: OrderedDict[str, Any], digest: str, value: Any) -> None:
        bound = NEGATIVE_CACHE_ENTRIES if cache is self._negative else CACHE_ENTRIES
        with self._lock:
            cache[digest] = value
            cache.move_to_end(digest)
            while len(cache) > bound:
                cache.popitem(last=False)

    def _forget(self, digest: str) -> None:
        with self._lock:
            self._cache.pop(digest, None)
            self._negative.pop(digest, None)
