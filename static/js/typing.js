/* Obrolan client: typing notices, both ways.  ES5; see docs/client.md ("NAME is typing…").
 *
 * Showing: each notice keeps a name in "X is typing…" (#typing) for TYPING_SHOW_MS; the name goes
 * earlier when its message arrives, when they leave, or when the stream that carried the notices
 * closes.  Sending: at most one notice per TYPING_SEND_INTERVAL_MS while the reader types, over the
 * WebSocket when it is up, else by POST /typing.
 *
 *   var typing = new Obrolan.Typing({line, t, url: data-typing-url, transport() -> the Transport or null});
 */
(function (O) {
  'use strict';

  var TYPING_SEND_INTERVAL_MS = 2000; // the server drops more frequent notices anyway
  var TYPING_SHOW_MS = 4000;
  var TYPING_POST_TIMEOUT_MS = 10000; // a typing POST older than this is no news anymore
  var RENDER_MIN_WAIT_MS = 50;        // the next expiry check never comes sooner than this

  function now() { return new Date().getTime(); }

  function Typing(options) {
    this.line = options.line;
    this.t = options.t;
    this.url = options.url;
    this.transport = options.transport;
    this.typers = {};    // name -> time their notice expires
    this.timer = null;   // the next expiry
    this.lastSent = 0;   // when the reader's last notice went out
  }

  // ------------------------------------------------------------------ others typing

  // A notice from someone else.
  Typing.prototype.notice = function (name) {
    this.typers[name] = now() + TYPING_SHOW_MS;
    this.render();
  };

  // Their message arrived: they are done typing it.
  Typing.prototype.done = function (name) {
    if (this.typers[name]) { delete this.typers[name]; this.render(); }
  };

  // Someone who left stops typing.
  Typing.prototype.keepOnly = function (users) {
    var changed = false;
    for (var name in this.typers) {
      if (this.typers.hasOwnProperty(name) && users.indexOf(name) < 0) { delete this.typers[name]; changed = true; }
    }
    if (changed) { this.render(); }
  };

  // The stream that carried the notices is gone: they are over.
  Typing.prototype.clear = function () {
    this.typers = {};
    this.render();
  };

  // The names whose notice has not expired, then a timer for the next expiry.
  Typing.prototype.render = function () {
    var self = this;
    var t = this.t;
    var t0 = now();
    var names = [];
    var next = null;
    for (var name in this.typers) {
      if (!this.typers.hasOwnProperty(name)) { continue; }
      if (this.typers[name] > t0) {
        names.push(name);
        next = next === null ? this.typers[name] : Math.min(next, this.typers[name]);
      } else {
        delete this.typers[name];
      }
    }
    names.sort();
    var text = '';
    if (names.length === 1) { text = t('typing_one', { name: names[0] }); }
    else if (names.length === 2) { text = t('typing_two', { a: names[0], b: names[1] }); }
    else if (names.length > 2) { text = t('typing_many'); }
    this.line.textContent = text;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (next !== null) { this.timer = setTimeout(function () { self.render(); }, Math.max(RENDER_MIN_WAIT_MS, next - t0)); }
  };

  // ------------------------------------------------------------------ the reader typing

  // Over the WebSocket when it is up, else by POST /typing (event stream and long-poll readers).
  Typing.prototype.send = function () {
    var transport = this.transport();
    if (!transport || !(transport.streaming() || transport.posts())) { return; }
    var t0 = now();
    if (t0 - this.lastSent < TYPING_SEND_INTERVAL_MS) { return; }
    this.lastSent = t0;
    if (transport.streaming()) {
      transport.send('{"type":"typing"}');
    } else {
      // Best effort: a lost notice only means nobody sees "typing" for a moment.
      O.transport.request('POST', this.url, {}, function () {}, TYPING_POST_TIMEOUT_MS);
    }
  };

  // A message ends the burst: the next keystroke says "typing" at once.
  Typing.prototype.sent = function () {
    this.lastSent = 0;
  };

  O.Typing = Typing;
}(window.Obrolan = window.Obrolan || {}));
