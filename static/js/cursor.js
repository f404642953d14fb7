/* Obrolan client: where the stream resumes.  Pure: no DOM, no network.  ES5; see docs/client.md.
 *
 * The cursor is the id of the last event taken from the stream (null on an older page,
 * which stays static); the epoch names the room's history.  A resume sends both; an event
 * at or below the cursor is dropped, so a replay never shows anything twice.  When the
 * server answers "truncated", the client starts again from the tail it is given (cursor 0).
 */
(function (O) {
  'use strict';

  function Cursor(epoch, id) {
    this.epoch = epoch || null;
    this.id = typeof id === 'number' && !isNaN(id) ? id : null;
  }

  // From the page's data-epoch / data-cursor attributes ("" or missing: no cursor).
  Cursor.fromAttributes = function (epoch, cursor) {
    return new Cursor(epoch || null, cursor === null || cursor === undefined || cursor === '' ? null : parseInt(cursor, 10));
  };

  // Live updates need a cursor: without one the page is an older page.
  Cursor.prototype.live = function () { return this.id !== null; };

  // An event from the stream: true (and the cursor moves to it) when it is past the cursor.
  Cursor.prototype.take = function (e) {
    if (!e || typeof e.id !== 'number') { return false; }
    if (this.id !== null && e.id <= this.id) { return false; }
    this.id = e.id;
    return true;
  };

  // The answer's own cursor (long-poll): the cursor only moves forward.
  Cursor.prototype.advance = function (id) {
    if (typeof id === 'number' && (this.id === null || id > this.id)) { this.id = id; }
  };

  // A hello / poll answer's epoch and truncated flag.  Returns null, or when the server could
  // not give everything after the cursor, {restarted: whether the history itself started over};
  // the cursor is then 0: everything the server sends next is new.
  Cursor.prototype.answer = function (epoch, truncated) {
    var reset = null;
    if (truncated) {
      reset = { restarted: this.epoch !== null && epoch !== this.epoch };
      this.id = 0;
    }
    this.epoch = epoch;
    return reset;
  };

  // The server refused the cursor (400): ask for the tail.
  Cursor.prototype.refused = function () { this.id = null; };

  // Whether the stream has moved past event `id` (the cursor is at or beyond it).
  Cursor.prototype.passed = function (id) { return this.id !== null && id <= this.id; };

  // "?after=..&epoch=..&extra" for a resume (or '' when there is nothing to say).
  Cursor.prototype.query = function (extra) {
    var parts = [];
    if (this.id !== null) { parts.push('after=' + this.id); }
    if (this.epoch) { parts.push('epoch=' + encodeURIComponent(this.epoch)); }
    if (extra) { parts.push(extra); }
    return parts.length ? '?' + parts.join('&') : '';
  };

  O.Cursor = Cursor;
}(window.Obrolan = window.Obrolan || {}));
