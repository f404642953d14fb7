/* Obrolan client: who is in the room.  Pure: no DOM, no network.  ES5; see docs/client.md.
 *
 * The server sends the full user list once after the replay (and when asked); after that,
 * every join and leave event is the change.  apply() turns the list into the next one.
 * Names are unique in a room; the order is the server's (case-insensitive).
 */
(function (O) {
  'use strict';

  function byName(a, b) {
    var x = a.toLowerCase();
    var y = b.toLowerCase();
    return x < y ? -1 : x > y ? 1 : 0;
  }

  // The list after event e (a copy; the same list for anything but a join or a leave).
  function apply(users, e) {
    if (!e || (e.type !== 'join' && e.type !== 'leave') || typeof e.user !== 'string') { return users; }
    var next = [];
    for (var i = 0; i < users.length; i++) {
      if (users[i] !== e.user) { next.push(users[i]); }
    }
    if (e.type === 'join') {
      next.push(e.user);
      next.sort(byName);
    }
    return next;
  }

  O.users = { apply: apply };
}(window.Obrolan = window.Obrolan || {}));
