"""FrameWriter on a real socket pair: the kernel first, whole writes queued, a cut at a write boundary."""

from __future__ import annotations

import asyncio
import json
import socket

from tornado.iostream import IOStream

from handlers import frames
from handlers.wire import CHUNK_BYTES, FrameWriter

FRAME_TEXT_BYTES = 3000
WAIT_S = 5.0


def numbered(i: int) -> bytes:
    return frames.text_frame(json.dumps({"n": i, "pad": "x" * FRAME_TEXT_BYTES}).encode())


def parse(data: bytes) -> list[tuple[int, bytes]]:
    """Every whole frame in ``data``; fails on a cut-off one."""
    out, i = [], 0
    while i < len(data):
        opcode, n = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if n == 126:
            n, i = int.from_bytes(data[i:i + 2], "big"), i + 2
        elif n == 127:
            n, i = int.from_bytes(data[i:i + 8], "big"), i + 8
        assert i + n <= len(data), "a frame was cut off"
        out.append((opcode, data[i:i + n]))
        i += n
    return out


async def read_all(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    chunks = []
    while chunk := await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), WAIT_S):
        chunks.append(chunk)
    return b"".join(chunks)


def pair() -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ours.setblocking(False)
    theirs.setblocking(False)
    return ours, theirs


def test_a_cut_backlog_ends_on_a_frame_boundary_and_the_close_frame_follows_whole():
    async def run() -> None:
        ours, theirs = pair()
        stream = IOStream(ours)
        writer = FrameWriter(stream, limit_bytes=1 << 30)
        count = 400  # about 1.2 MB: far more than the kernel holds
        for i in range(count):
            assert writer.write(numbered(i))
        assert writer.backlog() > CHUNK_BYTES
        dropped = writer.cut()
        assert dropped > 0
        assert writer.write(numbered(count)) is True  # taken, and dropped: nothing goes after a cut
        close = stream.write(frames_close(1013))
        reading = asyncio.ensure_future(read_all(theirs))
        await asyncio.wait_for(close, WAIT_S)
        stream.close()
        got = parse(await reading)
        assert got[-1] == (0x8, (1013).to_bytes(2, "big"))
        numbers = [json.loads(payload)["n"] for opcode, payload in got[:-1]]
        assert numbers == list(range(len(numbers)))  # a prefix of what was written, every frame whole
        assert 0 < len(numbers) < count
        theirs.close()
    asyncio.run(run())


def test_queued_writes_go_out_in_order_and_then_the_kernel_is_written_directly_again():
    async def run() -> None:
        ours, theirs = pair()
        stream = IOStream(ours)
        writer = FrameWriter(stream, limit_bytes=1 << 30)
        count = 200
        for i in range(count):
            writer.write(numbered(i))
        reading = asyncio.ensure_future(read_all(theirs))
        while writer.backlog():  # drains as the other side reads
            await asyncio.wait_for(stream.write(b""), WAIT_S)  # (the writer's own callback runs first)
        assert writer._chunk is None and not stream.writing()  # so the next write goes straight to the kernel
        writer.write(numbered(count))
        stream.close()
        got = parse(await reading)
        assert [json.loads(p)["n"] for _o, p in got] == list(range(count + 1))
        theirs.close()
    asyncio.run(run())


def frames_close(code: int) -> bytes:
    return bytes([0x88, 2]) + code.to_bytes(2, "big")
