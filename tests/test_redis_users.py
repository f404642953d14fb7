"""A process that has never held a room still answers for it from Redis.

Two real server processes share one real redis-server; a user present through the first
must be seen, and their name refused, by the second before any client of the second
process has touched the room.
"""

from __future__ import annotations

import pytest

from tests.chatclient import Api
from tests.redis_helpers import RedisServer, start_servers


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis-users")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def servers(redis, tmp_path_factory):
    procs = start_servers(tmp_path_factory.mktemp("users"), redis.url, 2)
    yield procs
    for proc in procs:
        proc.stop()


@pytest.mark.gen_test(timeout=20)
async def test_users_and_name_clash_on_a_process_that_never_held_the_room(servers, io_loop):
    first, second = Api(servers[0].url), Api(servers[1].url)
    try:
        ani = await first.join("Ani", "cold room")
        sock = await ani.ws()
        _hello, _events, users = await sock.handshake()
        assert users == ["Ani"]

        # The second process has no client in this room: it must still ask Redis.
        budi = await second.join("Budi", "cold room")
        assert await budi.users() == ["Ani"]
        clash = await second.request("POST", "/join", json_body={"name": "ANI", "room": "cold room"},
                                     headers={"Accept": "application/json"})
        assert clash.status == 409, clash.body
        assert clash.json["error"] == "name_taken"
        sock.close()
    finally:
        first.close()
        second.close()
