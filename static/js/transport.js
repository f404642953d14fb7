/* Obrolan client: the connection.  WebSocket first, then Server-Sent Events (EventSource), then
 * long-poll; after falling back it keeps trying the better transport (with backoff) and moves up.
 * ES5 (XMLHttpRequest, no fetch or Promise); see docs/client.md.
 *
 * The transport resumes from the Cursor it is given and reports what the server says through
 * callbacks; what to do with it (timeline, outbox, user list) is app.js's business.
 *
 *   var tr = new Obrolan.Transport({wsPath, eventsPath, pollPath, webSocket: !!window.WebSocket,
 *                                   eventSource: !!window.EventSource}, cursor, {
 *     state(name, secondsLeft)   'connecting' | 'live' (WebSocket) | 'compat' (SSE) | 'fallback' (long-poll)
 *                                | 'reconnecting'
 *     hello(frame)               a WebSocket or event stream is up (after state()); replayed events follow
 *     frame(frame)               any other item of the WebSocket or event stream
 *     answer(data, first)        a long-poll answer (after state('fallback'))
 *     requeue()                  what was sent on a dropped connection goes out again
 *     socketClosed()             the stream that carried typing notices is gone (they are over)
 *     fatal(key)                 retrying cannot help: 'expired' | 'name_taken' | 'left_room'
 *   });
 *   tr.connect();
 */
(function (O) {
  'use strict';

  var BACKOFF_BASE_MS = 500;
  var BACKOFF_MAX_MS = 30000;
  var CLOSE_LEFT = 1000;           // WebSocket close: this session left the room (maybe in another tab)
  var OPEN_TIMEOUT_MS = 10000;     // no hello this long after opening a WebSocket or event stream: failed
  var BLOCKED_AFTER = 2;           // failures of a transport while HTTP works before the next one down
  var UP_FIRST_STEP = 1;           // the climb's first wait is backoff(1): 0.5-1 s, doubling up to 30 s
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
    if (status === 410) { return 'left_room'; }  // a long-poll ended: the session left (maybe in another tab)
    if (status === 409) { return 'name_taken'; }
    return null;
  }

  // A WebSocket close code after which reconnecting cannot help, or null.
  // 1000: this session left the room (maybe in another tab); 4409: the name is taken.
  function fatalClose(code) {
    if (code === CLOSE_LEFT) { return 'left_room'; }
    if (code === 4409) { return 'name_taken'; }
    return null;
  }

  // Best first.  A trial of a better one runs beside the one in use; its hello switches over.
  var LEVELS = ['ws', 'sse', 'poll'];
  var STATE_OF = { ws: 'live', sse: 'compat', poll: 'fallback' };

  function Transport(config, cursor, on) {
    this.wsPath = config.wsPath;
    this.eventsPath = config.eventsPath;
    this.pollPath = config.pollPath;
    this.has = { ws: !!config.webSocket, sse: !!(config.eventSource && config.eventsPath), poll: true };
    this.best = this.has.ws ? 'ws' : this.has.sse ? 'sse' : 'poll';  // what this browser can do at best
    this.mode = this.best; // what connect() opens: lower while the better ones prove blocked
    this.cursor = cursor;
    this.on = on;
    this.state = 'connecting';
    this.kind = null;      // 'ws' | 'sse' | 'poll' while one is up
    this.ws = null;
    this.es = null;
    this.pollXhr = null;
    this.attempt = 0;      // consecutive failures, for the backoff
    this.blocked = 0;      // failures of this.mode while HTTP answered
    this.timer = null;
    this.countdown = null;
    this.retryAt = 0;
    this.trial = null;     // {kind, conn}: a better transport being tried beside this one
    this.upTimer = null;
    this.upAttempt = 0;    // failed trials in a row, for the climb's backoff
    this.stopped = false;
  }

  var T = Transport.prototype;

  // The next transport down from `kind` that this browser has.
  T.below = function (kind) {
    for (var i = LEVELS.indexOf(kind) + 1; i < LEVELS.length; i++) {
      if (this.has[LEVELS[i]]) { return LEVELS[i]; }
    }
    return 'poll';
  };

  T.better = function (a, b) { return LEVELS.indexOf(a) < LEVELS.indexOf(b); };

  T.setState = function (state, secondsLeft) {
    this.state = state;
    this.on.state(state, secondsLeft);
  };

  T.isUp = function () { return this.kind !== null && this.state === STATE_OF[this.kind]; };

  // Whether a frame can go out on the WebSocket now.
  T.streaming = function () { return this.kind === 'ws' && this.ws !== null && this.isUp(); };

  // Whether sending is by HTTP POST now (an event stream or long-poll is up).
  T.posts = function () { return (this.kind === 'sse' || this.kind === 'poll') && this.isUp(); };

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

  function shut(conn) {
    if (conn) { try { conn.close(); } catch (e) { /* already closed */ } }
  }

  // Drops the connection in use (not a trial).
  T.close = function () {
    var ws = this.ws, es = this.es, xhr = this.pollXhr;
    this.ws = null;
    this.es = null;
    this.pollXhr = null;  // its callback sees it is stale and does nothing
    shut(ws);
    shut(es);
    if (xhr) { try { xhr.abort(); } catch (e) { /* already done */ } }
    this.kind = null;
    this.on.requeue();  // sent on a connection we dropped: resend (same client_id) on the next
  };

  T.stopTrial = function () {
    if (this.upTimer) { clearTimeout(this.upTimer); this.upTimer = null; }
    var trial = this.trial;
    this.trial = null;
    if (trial) { shut(trial.conn); }
  };

  // For good (the page stops: left, expired, name taken).
  T.stop = function () {
    this.stopped = true;
    this.clearTimers();
    this.stopTrial();
    this.close();
  };

  T.connect = function () {
    this.clearTimers();
    if (this.stopped) { return; }
    this.close();
    if (this.state === 'reconnecting') { this.setState('reconnecting', 0); }
    else if (this.state !== 'fallback' && this.state !== 'compat') { this.setState('connecting'); }
    if (this.mode === 'ws') { this.openSocket(false); }
    else if (this.mode === 'sse') { this.openStream(false); }
    else { this.poll(); }
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

  // A WebSocket or event stream that opened (hello: `frame`).  A trial takes over from the
  // transport in use: that one is closed and the trial's replay starts at the cursor the trial
  // was opened with, so what came in meanwhile is dropped by id (no gap, no duplicate).
  T.opened = function (kind, conn, trial, frame) {
    if (trial) {
      this.trial = null;
      this.clearTimers();
      this.close();
      this.mode = kind;
      this.upAttempt = 0;
    }
    if (kind === 'ws') { this.ws = conn; } else { this.es = conn; }
    this.kind = kind;
    this.attempt = 0;
    this.blocked = 0;
    this.setState(STATE_OF[kind]);
    this.on.hello(frame);
    this.scheduleUp();
  };

  // After falling back, try the best transport again later: 0.5-1 s, then doubling up to 30 s.
  T.scheduleUp = function () {
    if (this.stopped || this.upTimer || this.trial || !this.better(this.best, this.mode)) { return; }
    var self = this;
    var delay = backoff(this.upAttempt + UP_FIRST_STEP, Math.random());
    this.upAttempt += 1;
    this.upTimer = setTimeout(function () {
      self.upTimer = null;
      if (!self.stopped && self.better(self.best, self.mode)) { self.tryUp(self.best); }
    }, delay);
  };

  T.tryUp = function (kind) {
    if (kind === 'ws') { this.openSocket(true); } else { this.openStream(true); }
  };

  // A trial of `kind` never got going: try the next better one than what is in use, else later.
  T.trialFailed = function (kind) {
    this.trial = null;
    var next = this.below(kind);
    if (this.better(next, this.mode)) { this.tryUp(next); return; }
    this.scheduleUp();
  };

  // ------------------------------------------------------------ WebSocket

  T.openSocket = function (trial) {
    var loc = window.location;
    var url = (loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + this.wsPath + this.cursor.query();
    var ws;
    try {
      ws = new window.WebSocket(url);
    } catch (e) {
      if (trial) { this.trialFailed('ws'); } else { this.failed('ws', false, 1006); }
      return;
    }
    var link = this.attach('ws', ws, trial, function () { shut(ws); });
    ws.onmessage = function (msg) { link.receive(msg.data, null); };
    ws.onclose = function (ev) { link.ended(ev.code); };
  };

  // ------------------------------------------------------------ Server-Sent Events

  // EventSource reconnects by itself, but we close it on any error and reconnect ourselves, so
  // the badge, the backoff and the climb back to WebSocket follow one set of rules.
  T.openStream = function (trial) {
    var es;
    try {
      es = new window.EventSource(this.eventsPath + this.cursor.query());
    } catch (e) {
      if (trial) { this.trialFailed('sse'); } else { this.failed('sse', false, 0); }
      return;
    }
    var link = this.attach('sse', es, trial, function () { es.onerror(); });
    es.onmessage = function (msg) {
      link.receive(msg.data, function (frame) {
        if (frame.type !== 'end') { return false; }
        // The server ended the stream and says why: left (for good, as a WebSocket's close with
        // CLOSE_LEFT), restarting, too slow...
        shut(es);
        link.ended(!frame.reconnect && frame.reason === 'left' ? CLOSE_LEFT : 0);
        return true;
      });
    };
    es.onerror = function () { shut(es); link.ended(0); };
  };

  // What a WebSocket and an event stream share: the slot the connection fills (this.ws or this.es,
  // or this.trial while it is a trial), the open timeout (`abort` ends it), the hello that makes it
  // the connection in use, and its end.  Returns the link the connection's handlers call:
  //   receive(data, other)  a message; `other(frame)` may take a non-hello frame (true: taken)
  //   ended(code)           it ended: a WebSocket close code, CLOSE_LEFT, or 0 (a stream)
  T.attach = function (kind, conn, trial, abort) {
    var self = this;
    var slot = kind === 'ws' ? 'ws' : 'es';
    var link = { hello: false, trial: trial };
    if (trial) { this.trial = { kind: kind, conn: conn }; } else { this[slot] = conn; }
    function current() {
      return link.trial ? self.trial !== null && self.trial.conn === conn : self[slot] === conn;
    }
    var openTimer = setTimeout(function () {
      if (!link.hello && current()) { abort(); }
    }, OPEN_TIMEOUT_MS);
    link.receive = function (data, other) {
      if (!current()) { return; }
      var frame = parseJSON(data);
      if (!frame) { return; }
      if (frame.type === 'hello') {
        link.hello = true;
        clearTimeout(openTimer);
        self.opened(kind, conn, link.trial, frame);
        link.trial = false;  // it is the connection in use now
      } else if (!(other && other(frame))) {
        self.on.frame(frame);
      }
    };
    link.ended = function (code) {
      clearTimeout(openTimer);
      if (!current()) { return; }
      if (link.trial) { self.trialFailed(kind); return; }
      self[slot] = null;
      self.kind = null;
      self.failed(kind, link.hello, code);
    };
    return link;
  };

  // The WebSocket or event stream in use closed (`wasLive`: after its hello).
  T.failed = function (kind, wasLive, code) {
    var self = this;
    this.on.requeue();
    this.on.socketClosed();
    var key = code ? fatalClose(code) : null;
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
        self.blocked += 1;
        if (self.blocked >= BLOCKED_AFTER) {
          // HTTP works and this transport does not (a proxy, an old server): the next one down,
          // while a timer tries the better one again now and then.
          self.blocked = 0;
          self.mode = self.below(kind);
          self.upAttempt = 0;
          if (self.mode === 'poll') { self.pollAnswer(data); } else { self.connect(); }
          self.scheduleUp();
          return;
        }
      }
      self.scheduleReconnect();
    }, POLL_SLACK_MS);
  };

  // ------------------------------------------------------------ long-poll

  T.poll = function () {
    var self = this;
    if (this.stopped || this.mode !== 'poll') { return; }  // moved up meanwhile
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
