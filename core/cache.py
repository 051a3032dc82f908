"""Django's caches, with what this project asks of them beyond Django's API.

Redis: one Redis client per connection pool instead of a new one per call.

Django builds a ``redis.Redis`` for every cache operation; building one sets up some 170 response
callbacks, which on this project's hottest paths (each API call counts its rate limit and reads the
process caches' versions) cost more than the round trip itself. A client is thread-safe and cheap
to share: the pool under it does the connection handling.

Both caches can ``count(key, timeout=)``: add one to a counter that starts with its first count and
lives ``timeout`` seconds from then (the rate limits' windows). Django's ``incr`` asks Redis whether
the key exists before incrementing it, and needs an ``add`` first for a new window: two or three
round trips on every API call where this takes one (a Lua script: the count and the window's
expiry at its first count, atomic in Redis).
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


_COUNT = "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n"


class SharedClientRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient
        self._count_scripts: dict[int, object] = {}

    def count(self, key, *, timeout: int, version=None) -> int:
        key = self.make_and_validate_key(key, version=version)
        # One command, atomic in Redis: a script that counts and starts the clock at the first count
        # (a pipeline of SET NX EX and INCR cost redis-py a fifth more of the client's time).
        client = self._cache.get_client(key, write=True)
        script = self._count_scripts.get(id(client))
        if script is None:
            script = self._count_scripts[id(client)] = client.register_script(_COUNT)
        return script(keys=[key], args=[timeout])


class CountingLocMemCache(LocMemCache):
    """The in-process cache of a single process (the embedded default), with ``count``."""

    def count(self, key, *, timeout: int, version=None) -> int:
        self.add(key, 0, timeout=timeout, version=version)
        return self.incr(key, version=version)
