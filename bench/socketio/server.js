// A small socket.io room server: the Node.js baseline of bench/fanout.py.
//
// It does what the other bench servers do per message and no more: give the
// event the room's next id and a timestamp, and broadcast it to the room
// (socket.io encodes a broadcast once and writes the same packet to every member).
// Usage: node server.js PORT   (room and name come from the connect URL's query)
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = parseInt(process.argv[2] || "8890", 10);
const LONG_MS = 3600 * 1000; // the bench's clients do not answer Engine.IO pings

const httpServer = http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/plain" });
  res.end("ok\n");
});
const io = new Server(httpServer, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  pingInterval: LONG_MS,
  pingTimeout: LONG_MS,
});

const lastId = new Map(); // room -> last event id

io.on("connection", (socket) => {
  const room = String(socket.handshake.query.room || "bench");
  const user = String(socket.handshake.query.name || "anon");
  socket.join(room);
  socket.on("msg", (m) => {
    const id = (lastId.get(room) || 0) + 1;
    lastId.set(room, id);
    io.to(room).emit("message", {
      id, type: "message", room, user, ts: new Date().toISOString(), text: String(m && m.text),
    });
  });
  socket.on("disconnect", () => {
    if (io.sockets.adapter.rooms.get(room) === undefined) lastId.delete(room);
  });
});

httpServer.listen(port, "127.0.0.1", () => console.log(`socket.io bench server on 127.0.0.1:${port}`));
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => { io.close(); process.exit(0); });
}
