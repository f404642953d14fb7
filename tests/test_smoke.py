import pytest


@pytest.mark.gen_test
async def test_two_websocket_users_chat(api):
    ani = await api.join("Ani", "lobby")
    budi = await api.join("Budi", "lobby")
    a = await ani.ws()
    _hello, _events, users = await a.handshake()
    assert users == ["Ani"]
    b = await budi.ws()
    await b.handshake()
    await a.recv_until(lambda f: f["type"] == "presence" and f["users"] == ["Ani", "Budi"])
    await b.send({"type": "message", "text": "halo Ani"})
    got = await a.recv_until(lambda f: f["type"] == "message")
    assert got["user"] == "Budi" and got["text"] == "halo Ani"
