"""Django's caches, with what this project asks of them beyond Django's API.

Redis: one Redis client per connection pool instead of a new one per call.

Django builds a ``redis.Redis`` for every cache operation; building one sets up some 170 response
callbacks, which on this project's hottest paths (each API call counts its rate limit and reads the
process caches' versions) cost more than the round trip itself. A client is thread-safe and cheap
to share: the pool under it does the connection handling.

Both caches can ``count(key, timeout=)``: add one to a counter that starts with its first count and
lives ``timeout`` seconds from then (the rate limits' windows). Django's ``incr`` asks Redis whether
the key exists before incrementing it, and needs an ``add`` first for a new window: two or three
round trips on every API call where this takes one.
"""

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class SharedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class SharedClientRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient

    def count(self, key, *, timeout: int, version=None) -> int:
        key = self.make_and_validate_key(key, version=version)
        # One round trip: both commands go in one write (a pipeline, not a transaction: each is
        # atomic on its own, and a counter another process started meanwhile is not reset by NX).
        pipe = self._cache.get_client(key, write=True).pipeline(transaction=False)
        pipe.set(key, 0, ex=timeout, nx=True)
        pipe.incr(key)
        return pipe.execute()[1]


class CountingLocMemCache(LocMemCache):
    """The in-process cache of a single process (the embedded default), with ``count``."""

    def count(self, key, *, timeout: int, version=None) -> int:
        self.add(key, 0, timeout=timeout, version=version)
        return self.incr(key, version=version)
