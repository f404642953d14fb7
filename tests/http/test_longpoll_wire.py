"""The long-poll answer on the wire: written from a head made once (handlers/answers.py) through
``compat.finish_whole``, it is the answer Tornado writes for any other JSON request, over
HTTP/1.1 (keep-alive: the next poll on the same connection) and HTTP/1.0."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from tests.chatclient import Api, is_event, room_url

TIMEOUT_S = 10


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, token: str,
                   version: str = "1.1", connection: str | None = None) -> tuple[dict[str, str], bytes, bytes]:
    """One request on an open connection: the answer's headers (lower-case names), raw head and body."""
    extra = f"Connection: {connection}\r\n" if connection else ""
    writer.write(f"GET {path} HTTP/{version}\r\nHost: chat\r\nAuthorization: Bearer {token}\r\n{extra}\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT_S)
    headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if line)
    headers = {name.lower(): value for name, value in headers.items()}
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), TIMEOUT_S)
    return headers, head, body


def host_port(base_url: str) -> tuple[str, int]:
    host, _, port = base_url.split("://", 1)[1].rstrip("/").rpartition(":")
    return host, int(port)


def same_but_length_and_date(head: bytes) -> bytes:
    return re.sub(rb"\r\n(Content-Length|Date): [^\r]*", b"", head)


@pytest.mark.gen_test(timeout=TIMEOUT_S * 3)
async def test_a_woken_poll_gets_the_answer_tornado_would_write_and_the_connection_polls_again(api: Api) -> None:
    ani = await api.join("Ani", "kabel")
    budi = await api.join("Budi", "kabel")
    a = await ani.ws()
    await a.handshake()
    reader, writer = await asyncio.open_connection(*host_port(api.base_url))
    users, users_head, _ = await exchange(reader, writer, room_url("kabel", "/users"), budi.token)
    first, _, body = await exchange(reader, writer, room_url("kabel", "/messages"), budi.token)
    cursor = json.loads(body)["cursor"]
    # A poll that waits (Budi is present: his first poll made him so), woken by Ani's message.
    woken = asyncio.ensure_future(exchange(reader, writer, room_url("kabel", f"/messages?after={cursor}&wait=30"),
                                           budi.token))
    await ani.users()  # a round trip after the poll's request went: it is held by now, or answered below
    await a.send({"type": "message", "text": "halo"})
    headers, head, body = await woken
    answer = json.loads(body)
    assert [(e["type"], e["text"]) for e in answer["events"]] == [("message", "halo")]
    assert answer["cursor"] == cursor + 1 and answer["typing"] == []
    # The same headers, in the same order, as Tornado's own answer to /users (but its length and date).
    assert same_but_length_and_date(head) == same_but_length_and_date(users_head)
    assert headers["content-type"] == "application/json; charset=UTF-8" and headers["cache-control"] == "no-store"
    assert set(headers) == set(users) == set(first)
    assert "connection" not in headers  # HTTP/1.1 keep-alive: nothing to say
    # keep-alive: the same connection polls again and is answered again
    await a.send({"type": "message", "text": "lagi"})
    _, _, again = await exchange(reader, writer, room_url("kabel", f"/messages?after={cursor + 1}&wait=30"),
                                 budi.token)
    assert [e["text"] for e in json.loads(again)["events"]] == ["lagi"]
    writer.close()
    a.close()


@pytest.mark.parametrize("connection", [None, "keep-alive"])
@pytest.mark.gen_test(timeout=TIMEOUT_S * 3)
async def test_an_http_1_0_poll_is_answered_and_its_connection_kept_only_when_asked(api: Api,
                                                                                  connection: str | None) -> None:
    ani = await api.join("Ani", "lama")
    budi = await api.join("Budi", "lama")
    a = await ani.ws()
    await a.handshake()
    first = await budi.poll()
    cursor = first.json["cursor"]
    reader, writer = await asyncio.open_connection(*host_port(api.base_url))
    woken = asyncio.ensure_future(exchange(reader, writer, room_url("lama", f"/messages?after={cursor}&wait=30"),
                                           budi.token, version="1.0", connection=connection))
    await ani.users()
    await a.send({"type": "message", "text": "dulu"})
    headers, head, body = await woken
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert [e["text"] for e in json.loads(body)["events"]] == ["dulu"]
    if connection == "keep-alive":
        assert headers["connection"] == "Keep-Alive"
        await a.recv_until(is_event("message", "Ani"))
        _, _, again = await exchange(reader, writer, room_url("lama", f"/messages?after={cursor}&wait=0"),
                                     budi.token, version="1.0", connection=connection)
        assert [e["text"] for e in json.loads(again)["events"]] == ["dulu"]
    else:
        assert "connection" not in headers
        assert await asyncio.wait_for(reader.read(), TIMEOUT_S) == b""  # the server closed it
    writer.close()
    a.close()


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test(timeout=TIMEOUT_S * 3)
async def test_polls_woken_together_each_get_their_own_answer_and_connection(api: Api, hub) -> None:
    """One wake answers every waiting poll from the room (rooms/waiters.py), with bytes made once
    for all of them, and each still gets its own answer: a typing notice answers the others' polls
    naming the typist, while the typist's own poll waits on (it would bring no news); an HTTP/1.1
    ``Connection: close`` poll and an HTTP/1.0 one are closed, an HTTP/1.0 keep-alive one is kept,
    and the next event answers the typist's poll and the kept connection's next poll alike."""
    ani = await api.join("Ani", "bareng")
    users = {name: await api.join(name, "bareng") for name in ("Budi", "Citra", "Dewi", "Eka")}
    a = await ani.ws()
    await a.handshake()
    for user in users.values():
        await user.poll()  # present from now on (30 s of grace)
    cursor = (await ani.poll()).json["cursor"]
    kinds = {"Budi": ("1.1", None), "Citra": ("1.1", "close"), "Dewi": ("1.0", None), "Eka": ("1.0", "keep-alive")}
    conns = {name: await asyncio.open_connection(*host_port(api.base_url)) for name in kinds}

    def poll(name: str) -> asyncio.Future:
        reader, writer = conns[name]
        version, connection = kinds[name]
        return asyncio.ensure_future(exchange(reader, writer, room_url("bareng", f"/messages?after={cursor}&wait=30"),
                                              users[name].token, version=version, connection=connection))

    polls = {name: poll(name) for name in kinds}
    await ani.users()  # a round trip after the polls' requests went: they are held by now
    assert hub.loaded("bareng").waiting == 4
    typed = await api.request("POST", room_url("bareng", "/typing"), token=users["Budi"].token)
    assert typed.json == {"sent": True}
    answers = {name: await polls[name] for name in ("Citra", "Dewi", "Eka")}
    for name, (_, head, body) in answers.items():
        answer = json.loads(body)
        assert answer["events"] == [] and answer["cursor"] == cursor and answer["typing"] == ["Budi"], name
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert "connection" not in answers["Dewi"][0]
    assert answers["Citra"][0]["connection"] == "close" and answers["Eka"][0]["connection"] == "Keep-Alive"
    for name in ("Citra", "Dewi"):
        assert await asyncio.wait_for(conns[name][0].read(), TIMEOUT_S) == b"", name  # the server closed it
    assert not polls["Budi"].done() and hub.loaded("bareng").waiting == 1  # the typist's own poll waits on

    again = {"Budi": polls["Budi"], "Eka": poll("Eka")}
    await ani.users()
    assert hub.loaded("bareng").waiting == 2
    await a.send({"type": "message", "text": "bersama"})
    for name, fut in again.items():
        _, _, body = await fut
        assert [(e["user"], e["text"]) for e in json.loads(body)["events"]] == [("Ani", "bersama")], name
    assert "connection" not in (await again["Budi"])[0]
    for _, writer in conns.values():
        writer.close()
    a.close()
