/* Obrolan client: the connection.  WebSocket first; long-poll where it is missing or blocked.
 * ES5 (XMLHttpRequest, no fetch or Promise); see docs/client.md.
 *
 * The transport resumes from the Cursor it is given and reports what the server says through
 * callbacks; what to do with it (timeline, outbox, user list) is app.js's business.
 *
 *   var tr = new Obrolan.Transport({wsPath, pollPath, webSocket: !!window.WebSocket}, cursor, {
 *     state(name, secondsLeft)   'connecting' | 'live' | 'fallback' | 'reconnecting'
 *     hello(frame)               WebSocket up (after state('live')); replayed events follow
 *     frame(frame)               any other WebSocket frame
 *     answer(data, first)        a long-poll answer (after state('fallback'))
 *     requeue()                  what was sent on a dropped connection goes out again
 *     socketClosed()             the WebSocket is gone (typing notices are over)
 *     fatal(key)                 retrying cannot help: 'expired' | 'name_taken' | 'left_room'
 *   });
 *   tr.connect();
 */
(function (O) {
  'use strict';

  var BACKOFF_BASE_MS = 500;
  var BACKOFF_MAX_MS = 30000;
  var WS_OPEN_TIMEOUT_MS = 10000;  // a handshake hanging this long counts as failed
  var WS_BLOCKED_AFTER = 2;        // WS failures while HTTP works before falling back
  var POLL_WAIT_S = 25;
  var POLL_SLACK_MS = 15000;       // XHR timeout beyond the server's wait

  function parseJSON(text) {
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  // An XHR with JSON in and out: done(status, data, xhr); status 0 when there was no answer.
  function request(method, url, body, done, timeoutMs) {
    var xhr = new XMLHttpRequest();
    var finished = false;
    function finish(status, data) {
      if (finished) { return; }
      finished = true;
      done(status, data, xhr);
    }
    xhr.open(method, url, true);
    xhr.setRequestHeader('Accept', 'application/json');
    if (body !== null) { xhr.setRequestHeader('Content-Type', 'application/json'); }
    if (timeoutMs) {
      try { xhr.timeout = timeoutMs; } catch (e) { /* old XHR: no timeout property */ }
    }
    xhr.onreadystatechange = function () {
      if (xhr.readyState === 4) { finish(xhr.status, parseJSON(xhr.responseText)); }
    };
    xhr.ontimeout = function () { finish(0, null); };
    xhr.send(body === null ? null : JSON.stringify(body));
    return xhr;
  }

  // Full-jitter exponential backoff: a random delay in [d/2, d], d = 0.5 s doubling per failure
  // up to 30 s.  `random` in [0, 1).
  function backoff(attempt, random) {
    var ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, attempt));
    return ceiling / 2 + random * ceiling / 2;
  }

  // An HTTP status after which retrying cannot help: the notice's string key, or null.
  function fatalStatus(status) {
    if (status === 401) { return 'expired'; }
    if (status === 409) { return 'name_taken'; }
    return null;
  }

  // A WebSocket close code after which reconnecting cannot help, or null.
  // 1000: this session left the room (maybe in another tab); 4409: the name is taken.
  function fatalClose(code) {
    if (code === 1000) { return 'left_room'; }
    if (code === 4409) { return 'name_taken'; }
    return null;
  }

  function Transport(config, cursor, on) {
    this.wsPath = config.wsPath;
    this.pollPath = config.pollPath;
    this.mode = config.webSocket ? 'ws' : 'poll';  // 'poll' for good once WebSocket proves blocked
    this.cursor = cursor;
    this.on = on;
    this.state = 'connecting';
    this.kind = null;      // 'ws' | 'poll' while one is up
    this.ws = null;
    this.pollXhr = null;
    this.attempt = 0;      // consecutive failures, for the backoff
    this.wsBlocked = 0;    // WS failures while HTTP answered
    this.timer = null;
    this.countdown = null;
    this.retryAt = 0;
    this.stopped = false;
  }

  var T = Transport.prototype;

  T.setState = function (state, secondsLeft) {
    this.state = state;
    this.on.state(state, secondsLeft);
  };

  // Whether a frame can go out on the WebSocket now.
  T.streaming = function () { return this.kind === 'ws' && this.ws !== null && this.state === 'live'; };

  // Sends a frame on the live WebSocket; false when it cannot (not live, or closing).
  T.send = function (frame) {
    if (!this.streaming()) { return false; }
    try {
      this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
      return true;
    } catch (e) {
      return false;  // the socket is closing; its close requeues
    }
  };

  T.pollUrl = function (extra) { return this.pollPath + this.cursor.query(extra); };

  T.clearTimers = function () {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.countdown) { clearInterval(this.countdown); this.countdown = null; }
  };

  T.close = function () {
    var ws = this.ws;
    this.ws = null;
    if (ws) { try { ws.close(); } catch (e) { /* already closed */ } }
    var xhr = this.pollXhr;
    this.pollXhr = null;  // its callback sees it is stale and does nothing
    if (xhr) { try { xhr.abort(); } catch (e) { /* already done */ } }
    this.kind = null;
    this.on.requeue();  // sent on a connection we dropped: resend (same client_id) on the next
  };

  // For good (the page stops: left, expired, name taken).
  T.stop = function () {
    this.stopped = true;
    this.clearTimers();
    this.close();
  };

  T.connect = function () {
    this.clearTimers();
    if (this.stopped) { return; }
    this.close();
    if (this.state !== 'reconnecting' && this.state !== 'fallback') { this.setState('connecting'); }
    else if (this.state === 'reconnecting') { this.setState('reconnecting', 0); }
    if (this.mode === 'ws') { this.openSocket(); } else { this.poll(); }
  };

  // Waiting to reconnect: try now (back on the tab, the network is back).
  T.wake = function () {
    if (this.state === 'reconnecting' && this.timer) { this.connect(); }
  };

  T.tick = function () {
    this.setState('reconnecting', Math.max(1, Math.ceil((this.retryAt - new Date().getTime()) / 1000)));
  };

  T.scheduleReconnect = function () {
    if (this.stopped) { return; }
    var self = this;
    this.clearTimers();
    var delay = backoff(this.attempt, Math.random());
    this.attempt += 1;
    this.retryAt = new Date().getTime() + delay;
    this.tick();
    this.countdown = setInterval(function () { self.tick(); }, 1000);
    this.timer = setTimeout(function () { self.connect(); }, delay);
  };

  // True (and the page is told) when `status` means retrying cannot help.
  T.fatal = function (status) {
    var key = fatalStatus(status);
    if (key) { this.on.fatal(key); }
    return key !== null;
  };

  // ------------------------------------------------------------ WebSocket

  T.openSocket = function () {
    var self = this;
    var loc = window.location;
    var url = (loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + this.wsPath + this.cursor.query();
    var ws;
    var hello = false;
    try {
      ws = new window.WebSocket(url);
    } catch (e) {
      this.socketFailed(false, 1006);
      return;
    }
    this.ws = ws;
    var openTimer = setTimeout(function () {
      if (!hello && self.ws === ws) { try { ws.close(); } catch (e) { /* ignore */ } }
    }, WS_OPEN_TIMEOUT_MS);

    ws.onmessage = function (msg) {
      if (self.ws !== ws) { return; }
      var frame = parseJSON(msg.data);
      if (!frame) { return; }
      if (frame.type === 'hello') {
        hello = true;
        clearTimeout(openTimer);
        self.kind = 'ws';
        self.attempt = 0;
        self.wsBlocked = 0;
        self.setState('live');
        self.on.hello(frame);
      } else {
        self.on.frame(frame);
      }
    };
    ws.onclose = function (ev) {
      clearTimeout(openTimer);
      if (self.ws !== ws) { return; }
      self.ws = null;
      self.kind = null;
      self.socketFailed(hello, ev.code);
    };
  };

  T.socketFailed = function (wasLive, code) {
    var self = this;
    this.on.requeue();
    this.on.socketClosed();
    var key = fatalClose(code);
    if (key) { this.on.fatal(key); return; }
    if (wasLive) {
      this.scheduleReconnect();  // after 1001 (restart), 1013 (too slow), a network drop...
      return;
    }
    // Never got going.  Ask plain HTTP whether the server is there at all.
    this.setState('reconnecting', 0);
    this.pollXhr = request('GET', this.pollUrl('wait=0'), null, function (status, data, xhr) {
      if (self.pollXhr !== xhr) { return; }
      self.pollXhr = null;
      if (self.stopped || self.fatal(status)) { return; }
      if (status === 200 && data) {
        self.wsBlocked += 1;
        if (self.wsBlocked >= WS_BLOCKED_AFTER) {
          // HTTP works and WebSocket does not (a proxy, an old server): long-poll from here on.
          self.mode = 'poll';
          self.pollAnswer(data);
          return;
        }
      }
      self.scheduleReconnect();
    }, POLL_SLACK_MS);
  };

  // ------------------------------------------------------------ long-poll

  T.poll = function () {
    var self = this;
    // The first poll of a connection answers at once (we are live from then on); later ones wait.
    var wait = this.kind === 'poll' ? POLL_WAIT_S : 0;
    this.pollXhr = request('GET', this.pollUrl('wait=' + wait), null, function (status, data, xhr) {
      if (self.pollXhr !== xhr) { return; }
      self.pollXhr = null;
      if (self.stopped || self.fatal(status)) { return; }
      if (status === 200 && data) { self.pollAnswer(data); return; }
      if (status === 400) { self.cursor.refused(); }  // our cursor was refused: start from the tail
      self.kind = null;
      self.on.requeue();
      self.scheduleReconnect();
    }, wait * 1000 + POLL_SLACK_MS);
  };

  T.pollAnswer = function (data) {
    var self = this;
    var first = this.kind !== 'poll';
    this.kind = 'poll';
    this.attempt = 0;
    if (this.state !== 'fallback') { this.setState('fallback'); }
    this.on.answer(data, first);
    if (!this.stopped) { this.timer = setTimeout(function () { self.poll(); }, 0); }
  };

  O.transport = { request: request, backoff: backoff, fatalStatus: fatalStatus, fatalClose: fatalClose, parseJSON: parseJSON };
  O.Transport = Transport;
}(window.Obrolan = window.Obrolan || {}));
