"""The plain-Tornado baseline of bench/fanout.py: one room, ``write_message`` per member.

What a straightforward Tornado chat server does: give the message the room's next
id and a timestamp, encode it once, and call ``write_message`` for each member
(Tornado then builds a frame and a Future per member).  It speaks Obrolan's
client protocol (``{"type": "message", "text": ...}`` in, events out) so the same
load generator drives both.  No sessions, presence, buffer or limits.

Usage: python bench/tornado_room.py PORT
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import orjson
import tornado.web
import tornado.websocket


class Rooms:
    def __init__(self) -> None:
        self.members: dict[str, set[RoomSocket]] = {}
        self.last_id: dict[str, int] = {}


class RoomSocket(tornado.websocket.WebSocketHandler):
    def initialize(self, rooms: Rooms) -> None:
        self.rooms = rooms

    def open(self, room: str) -> None:
        self.room = room
        self.user = self.get_query_argument("name", "anon")
        self.rooms.members.setdefault(room, set()).add(self)

    def on_message(self, message: str | bytes) -> None:
        frame = orjson.loads(message)
        if not isinstance(frame, dict) or frame.get("type") != "message":
            return
        event_id = self.rooms.last_id[self.room] = self.rooms.last_id.get(self.room, 0) + 1
        now = time.time()
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        data = orjson.dumps({"id": event_id, "type": "message", "room": self.room, "user": self.user,
                             "ts": ts, "text": str(frame.get("text"))}).decode()
        for member in tuple(self.rooms.members.get(self.room, ())):
            try:
                member.write_message(data)
            except tornado.websocket.WebSocketClosedError:
                pass

    def on_close(self) -> None:
        members = self.rooms.members.get(self.room)
        if members is not None:
            members.discard(self)


async def main(port: int) -> None:
    app = tornado.web.Application([(r"/rooms/([^/]+)/ws", RoomSocket, {"rooms": Rooms()})],
                                  websocket_ping_interval=0)
    app.listen(port, "127.0.0.1")
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
