"""Django's Redis cache, with one Redis client per connection pool instead of a new one per call.

Django builds a ``redis.Redis`` for every cache operation; building one sets up some 170 response
callbacks, which on this project's hottest paths (each API call counts its rate limit and reads the
process caches' versions) cost more than the round trip itself. A client is thread-safe and cheap
to share: the pool under it does the connection handling.
"""

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
