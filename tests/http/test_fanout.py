"""The broadcast write path: direct socket writes, the stream's buffer for the rest, one write per iteration.

Real sockets throughout.  A congested member is made with small kernel buffers
(the client's receive buffer before connecting, the server's send buffer of that
one connection), so the kernel takes part of a write and the rest has to wait in
order; a vanished member is made with a TCP reset.
"""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from tests.chatclient import RawWebSocket, Socket, is_event, is_presence, room_url

BIG_TEXT_CHARS = 1900


async def opening_frames(raw: RawWebSocket) -> list[dict]:
    """hello, the replay and the presence frame a new socket gets."""
    frames = [await raw.json_frame()]
    while frames[-1]["type"] != "presence":
        frames.append(await raw.json_frame())
    return frames


async def frames_until(sock: Socket, done, timeout: float = 20.0) -> list[dict]:
    """Every frame ``sock`` gets until ``done(frames)`` holds (each frame and the whole bounded)."""
    async def _collect() -> list[dict]:
        frames: list[dict] = []
        while not done(frames):
            frame = await sock.recv()
            assert frame is not None, f"connection closed after {len(frames)} frames"
            frames.append(frame)
        return frames
    return await asyncio.wait_for(_collect(), timeout)


def server_side(hub, room: str, name: str):
    """The server's RoomSocket of ``name`` in ``room`` (to shrink its kernel send buffer)."""
    matches = [s for s in hub.loaded(room).listeners if s.session.name == name]
    assert len(matches) == 1
    return matches[0]


@pytest.mark.settings(rate_limit=0, max_backlog=8 << 20)
@pytest.mark.gen_test(timeout=30)
async def test_partial_writes_keep_every_frame_whole_and_in_order(api, hub):
    ani = await api.join("Ani", "deras")
    sari = await api.join("Sari", "deras")
    slow = await RawWebSocket.connect(api.base_url, room_url("deras", "/ws"), sari.token, rcvbuf_bytes=4096)
    await opening_frames(slow)
    sock = server_side(hub, "deras", "Sari").ws_connection.stream.socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # the kernel takes a little at a time
    a = await ani.ws()
    await a.handshake()
    # Sari reads nothing while Ani sends 60 messages of ~2 KB (far more than both kernel buffers hold).
    count = 60
    for i in range(count):
        await a.send({"type": "message", "text": f"{i:04d} " + "x" * BIG_TEXT_CHARS})
    received = [await a.recv_until(is_event("message")) for _ in range(count)]
    assert [m["text"][:4] for m in received] == [f"{i:04d}" for i in range(count)]  # Ani was not held up
    # What the kernel did not take waits, in order, on the server.
    assert server_side(hub, "deras", "Sari")._writer.backlog() > 0

    # Now Sari reads: every frame whole (valid JSON), every message once, in order, none missing.
    got: list[dict] = []
    while len(got) < count:
        frame = await slow.json_frame()
        if frame["type"] == "message":
            got.append(frame)
    assert got == received
    ids = [m["id"] for m in got]
    assert ids == list(range(ids[0], ids[0] + count))
    slow.close()
    a.close()


@pytest.mark.settings(rate_limit=0)
@pytest.mark.gen_test(timeout=30)
async def test_events_broadcast_together_arrive_in_order_each_before_its_ack(api):
    users = [await api.join(f"U{i}", "ramai") for i in range(4)]
    socks = []
    for user in users:
        s = await user.ws()
        await s.handshake()
        socks.append(s)
    for s in socks[:-1]:  # every join has been seen everywhere (the last socket saw them on open)
        await s.recv_until(is_presence([u.name for u in users]))
    per_socket = 25
    # Every socket fires its messages without waiting for acks, and HTTP posts go in at the same
    # time: many events come out of one loop iteration and go to each member as one write.
    sends = [s.send({"type": "message", "text": f"{u.name}-{k}", "client_id": f"{u.name}-{k}"})
             for u, s in zip(users, socks, strict=True) for k in range(per_socket)]
    posts = [users[0].post(f"http-{k}") for k in range(20)]
    results = await asyncio.gather(*sends, *posts)
    assert all(r.status == 201 for r in results[len(sends):])
    total = per_socket * len(socks) + 20

    for user, s in zip(users, socks, strict=True):
        ids: list[int] = []
        acked: list[str] = []
        while len(ids) < total or len(acked) < per_socket:
            frame = await s.recv()
            assert frame is not None
            if frame["type"] == "message":
                ids.append(frame["id"])
            elif frame["type"] == "ack":
                assert frame["id"] in ids, "an ack came before its event"
                acked.append(frame["client_id"])
        assert ids == list(range(ids[0], ids[0] + total))  # no gap, no duplicate, in order
        assert acked == [f"{user.name}-{k}" for k in range(per_socket)]
        s.close()


@pytest.mark.settings(rate_limit=0, presence_grace=0.1)
@pytest.mark.gen_test(timeout=30)
async def test_member_whose_connection_resets_is_dropped_and_others_get_everything(api, hub):
    ani = await api.join("Ani", "putus")
    budi = await api.join("Budi", "putus")
    a = await ani.ws()
    await a.handshake()
    gone = await RawWebSocket.connect(api.base_url, room_url("putus", "/ws"), budi.token, rcvbuf_bytes=4096)
    await opening_frames(gone)
    server_side(hub, "putus", "Budi").ws_connection.stream.socket.setsockopt(
        socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    await a.recv_until(is_presence(["Ani", "Budi"]))
    for i in range(20):  # bytes queued for Budi on the server
        await a.send({"type": "message", "text": f"{i:04d} " + "y" * BIG_TEXT_CHARS})
    # Budi's machine vanishes: a reset, not a close handshake.
    raw = gone.writer.get_extra_info("socket")
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    gone.writer.transport.abort()
    for i in range(20, 40):
        await a.send({"type": "message", "text": f"{i:04d} " + "y" * BIG_TEXT_CHARS})
    # Budi's leave comes once the grace period after the reset is over: on a busy machine that
    # can be before Ani's last sends are broadcast, so it is looked for among all the frames.
    frames = await frames_until(a, lambda seen: len([f for f in seen if is_event("message")(f)]) == 40
                                and a.users == ["Ani"])
    texts = [f["text"][:4] for f in frames if is_event("message")(f)]
    assert texts == [f"{i:04d}" for i in range(40)]
    leaves = [i for i, f in enumerate(frames) if is_event("leave", "Budi")(f)]
    assert len(leaves) == 1
    assert a.users == ["Ani"]  # the leave event is the change of the list
    await a.send({"type": "message", "text": "masih di sini"})
    assert (await a.recv_until(is_event("message")))["text"] == "masih di sini"
    a.close()


@pytest.mark.settings(rate_limit=0)
@pytest.mark.gen_test(timeout=30)
async def test_sockets_opened_while_broadcasts_are_queued_get_each_event_once(api):
    ani = await api.join("Ani", "antri")
    a = await ani.ws()
    hello, _, _ = await a.handshake()
    start = hello["cursor"]
    count = 300
    joiners = [await api.join(f"J{i}", "antri") for i in range(6)]
    sends = [a.send({"type": "message", "text": f"m{k}"}) for k in range(count)]
    # The sockets open while the messages are being broadcast: their replay and the live
    # broadcasts meet in the same loop iterations.
    opening = [j.ws(after=start) for j in joiners]
    results = await asyncio.gather(*sends, *opening)
    for s in results[count:]:
        hello, replay, _ = await s.handshake()
        assert hello["truncated"] is False
        texts = [e["text"] for e in replay if e["type"] == "message"]
        while len(texts) < count:
            frame = await s.recv()
            assert frame is not None
            if frame["type"] == "message":
                texts.append(frame["text"])
        assert texts == [f"m{k}" for k in range(count)]  # each once, in order
        s.close()
    a.close()
