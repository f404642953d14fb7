"""Real HTTP and WebSocket clients for the tests: what curl and a browser would send."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

RECV_TIMEOUT_S = 5.0


@dataclass
class Response:
    status: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def room_url(room: str, suffix: str = "") -> str:
    return "/rooms/" + quote(room, safe="") + suffix


class Api:
    """An HTTP client bound to one server."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = AsyncHTTPClient(force_instance=True, max_clients=200)

    async def request(self, method: str, path: str, *, token: str | None = None, json_body: Any = None,
                      form: dict[str, str] | None = None, body: bytes | str | None = None,
                      headers: dict[str, str] | None = None, timeout: float = 70.0,
                      follow_redirects: bool = False) -> Response:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body)
            hdrs.setdefault("Content-Type", "application/json")
        elif form is not None:
            body = urlencode(form)
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if method == "POST" and body is None:
            body = b""
        req = HTTPRequest(self.base_url + path, method=method, headers=hdrs, body=body,
                          request_timeout=timeout, follow_redirects=follow_redirects)
        resp = await self.http.fetch(req, raise_error=False)
        return Response(resp.code, resp.headers, resp.body or b"")

    async def join(self, name: str, room: str) -> User:
        resp = await self.request("POST", "/join", json_body={"name": name, "room": room},
                                  headers={"Accept": "application/json"})
        assert resp.status == 200, resp.body
        return User(self, name, room, resp.json["token"])

    def close(self) -> None:
        self.http.close()


@dataclass
class User:
    api: Api
    name: str
    room: str
    token: str

    async def post(self, text: Any, room: str | None = None, headers: dict[str, str] | None = None,
                   **extra: Any) -> Response:
        """POST a message; ``extra`` goes into the JSON body (e.g. client_id), ``headers`` into the request."""
        return await self.api.request("POST", room_url(room or self.room, "/messages"), token=self.token,
                                      json_body={"text": text, **extra}, headers=headers)

    async def poll(self, after: int | None = None, wait: float | None = None, epoch: str | None = None,
                   room: str | None = None, **query: Any) -> Response:
        params = {k: v for k, v in {"after": after, "wait": wait, "epoch": epoch, **query}.items() if v is not None}
        path = room_url(room or self.room, "/messages") + ("?" + urlencode(params) if params else "")
        return await self.api.request("GET", path, token=self.token)

    async def users(self, room: str | None = None) -> list[str]:
        resp = await self.api.request("GET", room_url(room or self.room, "/users"), token=self.token)
        assert resp.status == 200, resp.body
        return resp.json["users"]

    async def leave(self, room: str | None = None) -> Response:
        return await self.api.request("POST", room_url(room or self.room, "/leave"), token=self.token)

    async def ws(self, after: int | None = None, epoch: str | None = None, room: str | None = None,
                 headers: dict[str, str] | None = None) -> Socket:
        params = {k: v for k, v in {"after": after, "epoch": epoch}.items() if v is not None}
        url = self.api.base_url.replace("http", "ws", 1) + room_url(room or self.room, "/ws")
        if params:
            url += "?" + urlencode(params)
        hdrs = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        conn = await websocket_connect(HTTPRequest(url, headers=hdrs), max_message_size=1 << 24)
        return Socket(conn)


class Socket:
    """A WebSocket client that reads JSON frames with a bounded wait."""

    def __init__(self, conn: WebSocketClientConnection) -> None:
        self.conn = conn
        # The user list as a client keeps it: the whole list after the replay, then each join
        # and leave event applied (docs/protocol.md); None until the first list.
        self.users: list[str] | None = None
        self.lists = 0  # whole lists (presence frames) received

    async def recv(self, timeout: float = RECV_TIMEOUT_S) -> dict[str, Any] | None:
        """The next frame as JSON, or None when the server closed the connection."""
        msg = await asyncio.wait_for(self.conn.read_message(), timeout)
        if msg is None:
            return None
        frame = json.loads(msg)
        self._track(frame)
        return frame

    def _track(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "presence":
            self.users = list(frame["users"])
            self.lists += 1
        elif kind in ("join", "leave") and self.users is not None:
            others = [u for u in self.users if u != frame["user"]]
            self.users = sorted([*others, frame["user"]], key=str.casefold) if kind == "join" else others

    async def recv_until(self, predicate, timeout: float = RECV_TIMEOUT_S) -> dict[str, Any]:
        """Skip frames until one matches (or, for ``is_presence``, until the user list this
        client keeps is the one wanted); fail on close or timeout."""
        if isinstance(predicate, UsersAre) and self.users == predicate.users:
            return {"type": "presence", "users": list(self.users)}  # already so

        async def _loop() -> dict[str, Any]:
            while True:
                frame = await self.recv(timeout)
                assert frame is not None, "connection closed before the expected frame"
                if isinstance(predicate, UsersAre):
                    if self.users == predicate.users:
                        return frame
                elif predicate(frame):
                    return frame
        return await asyncio.wait_for(_loop(), timeout)

    async def handshake(self) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
        """hello, the replayed events, and the presence list sent on open."""
        hello = await self.recv()
        assert hello is not None and hello["type"] == "hello", hello
        events = []
        while True:
            frame = await self.recv()
            assert frame is not None
            if frame["type"] == "presence":
                return hello, events, frame["users"]
            events.append(frame)

    async def send(self, obj: Any) -> None:
        await self.conn.write_message(obj if isinstance(obj, str | bytes) else json.dumps(obj))

    async def closed(self, timeout: float = RECV_TIMEOUT_S) -> int | None:
        """Read until the server closes; return the close code."""
        async def _drain() -> None:
            while await self.conn.read_message() is not None:
                pass
        await asyncio.wait_for(_drain(), timeout)
        return self.conn.close_code

    def close(self) -> None:
        self.conn.close()


# -- browser-style helpers: cookies and form posts ---------------------------------------------------------------


def set_cookie(resp: Response, name: str) -> str:
    """The ``name=value`` of the cookie ``name`` a response set (for a ``Cookie`` header)."""
    for header in resp.headers.get_list("Set-Cookie"):
        pair = header.split(";", 1)[0]
        if pair.startswith(name + "="):
            return pair
    raise AssertionError(f"no {name} cookie in {resp.headers.get_list('Set-Cookie')}")


def session_cookie(resp: Response) -> str:
    """The session cookie a response set (``obrolan_session=...``)."""
    return set_cookie(resp, "obrolan_session")


def as_user(user: User, api: Api) -> User:
    """The same session talking to another process (any process accepts its token)."""
    return User(api, user.name, user.room, user.token)


async def form_join(api: Api, name: str, room: str, headers: dict[str, str] | None = None) -> Response:
    """``POST /join`` the way a browser form does it (no Accept: application/json)."""
    return await api.request("POST", "/join", form={"name": name, "room": room}, headers=headers)


# -- raw sockets: clients that misbehave on purpose -----------------------------------------------------------


def _host_port(base_url: str) -> tuple[str, int]:
    hostport = base_url.split("://", 1)[1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    return host, int(port)


class RawWebSocket:
    """A WebSocket client on a bare TCP socket.

    It reads only when told to and never answers a ping or a close frame, so it
    can play a reader that stopped reading or a peer that died.  A small receive
    buffer makes the kernel hold little on its behalf.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, base_url: str, path: str, token: str, rcvbuf_bytes: int | None = None) -> RawWebSocket:
        import base64
        import os
        import socket

        host, port = _host_port(base_url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf_bytes is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)  # before connect: sets the window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        # A small StreamReader limit: asyncio stops reading the socket once that much is buffered.
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 14)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"Authorization: Bearer {token}\r\n\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), RECV_TIMEOUT_S)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def frame(self, timeout: float = RECV_TIMEOUT_S) -> tuple[int, bytes] | None:
        """The next ``(opcode, payload)``, or None at end of stream."""
        async def _read() -> tuple[int, bytes] | None:
            try:
                head = await self.reader.readexactly(2)
            except asyncio.IncompleteReadError:
                return None
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(await self.reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await self.reader.readexactly(8), "big")
            return opcode, await self.reader.readexactly(length)
        return await asyncio.wait_for(_read(), timeout)

    async def send_frame(self, opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0,
                         masked: bool = True) -> None:
        """Write one frame exactly as told, however wrong: ``rsv`` is the RSV bits (0x70 all three),
        ``masked=False`` sends the payload in the clear, as only a server may."""
        import os
        import struct

        n = len(payload)
        mask_bit = 0x80 if masked else 0
        head = bytes([(0x80 if fin else 0) | (rsv & 0x70) | (opcode & 0x0F)])
        if n < 126:
            head += bytes([mask_bit | n])
        elif n < 1 << 16:
            head += bytes([mask_bit | 126]) + struct.pack("!H", n)
        else:
            head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
        if masked:
            key = os.urandom(4)
            head += key
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + payload)
        await self.writer.drain()

    async def send_json(self, obj: Any) -> None:
        """One masked text frame of JSON, as a browser sends it."""
        await self.send_frame(0x1, json.dumps(obj).encode())

    async def close_frame(self, timeout: float = RECV_TIMEOUT_S) -> tuple[int | None, bytes] | None:
        """Skip frames up to the close frame: its ``(code, reason)`` (code None when it has none),
        or None when the stream ends without one."""
        async def _read() -> tuple[int | None, bytes] | None:
            while True:
                got = await self.frame(timeout)
                if got is None:
                    return None
                if got[0] == 0x8:
                    payload = got[1]
                    return (int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None), payload[2:]
        return await asyncio.wait_for(_read(), timeout)

    async def eof(self, timeout: float = RECV_TIMEOUT_S) -> None:
        """Read and drop bytes until the server closes the TCP connection (TimeoutError if it does not)."""
        async def _drain() -> None:
            while await self.reader.read(1 << 16):
                pass
        try:
            await asyncio.wait_for(_drain(), timeout)
        except ConnectionResetError:  # closed with bytes of ours unread: closed all the same
            pass

    async def json_frames_until_close(self, timeout: float = RECV_TIMEOUT_S) -> tuple[list[dict[str, Any]], int]:
        """Every text frame as JSON up to the close frame, and the close code (pings are skipped)."""
        frames: list[dict[str, Any]] = []
        while True:
            got = await self.frame(timeout)
            assert got is not None, "stream ended without a close frame"
            opcode, payload = got
            if opcode == 0x8:
                return frames, int.from_bytes(payload[:2], "big")
            if opcode == 0x1:
                frames.append(json.loads(payload))

    async def json_frame(self, timeout: float = RECV_TIMEOUT_S) -> dict[str, Any]:
        """The next text frame as JSON (pings are skipped)."""
        while True:
            got = await self.frame(timeout)
            assert got is not None, "stream ended"
            if got[0] == 0x1:
                return json.loads(got[1])
            assert got[0] == 0x9, f"unexpected opcode {got[0]}"

    def close(self) -> None:
        self.writer.close()


async def raw_request(base_url: str, method: str, path: str,
                      headers: dict[str, str] | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Send one HTTP request on a bare TCP connection and hand back the connection (e.g. to drop it)."""
    host, port = _host_port(base_url)
    reader, writer = await asyncio.open_connection(host, port)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}",
             *(f"{k}: {v}" for k, v in (headers or {}).items()), "", ""]
    writer.write("\r\n".join(lines).encode())
    await writer.drain()
    return reader, writer


def is_event(kind: str, user: str | None = None):
    """A predicate for ``Socket.recv_until``: an event of type ``kind`` (by ``user``)."""
    return lambda f: f.get("type") == kind and (user is None or f.get("user") == user)


class UsersAre:
    """``recv_until(is_presence(users))``: until the client's user list is exactly ``users``."""

    def __init__(self, users: list[str]) -> None:
        self.users = users


def is_presence(users: list[str]) -> UsersAre:
    return UsersAre(users)


async def held_poll_by_newcomer(observer: Any, user: User, cursor: int, wait: float) -> tuple[asyncio.Future, dict]:
    """Start ``user``'s first connection: a long-poll that has to wait.

    The poll makes the user present, so the observer sees the join (proof that the
    server holds the request); it asks for what comes after that join (``cursor + 1``),
    so there is nothing to answer with yet.
    """
    poll = asyncio.ensure_future(user.poll(after=cursor + 1, wait=wait))
    join = await observer.recv_until(is_event("join", user.name))
    assert join["id"] == cursor + 1
    return poll, join
