/* Obrolan client: the room page, wired together.  Loaded last; see docs/client.md.
 * ES5 on purpose (var, function, XMLHttpRequest; no let/const/arrows/fetch/Promise) so old
 * browsers run it without a build step.
 *
 * The page works without JavaScript; this takes it over.  It reads the page, builds the parts
 * and connects them: live events (transport.js) into the timeline (timeline.js, cursor.js) on
 * screen (eventlist.js), sending through the outbox (outbox.js, sending.js) from the composer
 * (composer.js), the connection badge (status.js), typing notices (typing.js), the user list
 * (userlist.js), the unread counts (unread.js) and the live region (announcer.js).  What to do
 * with each event, and when the page stops for good, is decided here.
 */
(function (O) {
  'use strict';

  var doc = document;
  var docEl = doc.documentElement;
  docEl.className = docEl.className.replace(/(^|\s)no-js(\s|$)/, '$1js$2');

  var root = doc.getElementById('chat');
  if (!root) { return; }

  // The reader's time zone, for the server's pages (times on a no-JavaScript view of the room are
  // in it, handlers/pages.py reader_zone); the server checks the name against its zone database.
  var TZ_COOKIE_MAX_AGE_S = 365 * 24 * 3600;
  try {
    var zone = typeof Intl !== 'undefined' && Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && /^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) {
      doc.cookie = 'tz=' + zone + '; path=/; max-age=' + TZ_COOKIE_MAX_AGE_S + '; samesite=lax';
    }
  } catch (e) { /* no Intl: the pages say UTC */ }

  function $(id) { return doc.getElementById(id); }

  var el = {
    status: $('status'),
    retry: $('retry'),
    users: $('users'),
    userCount: $('user-count'),
    scroller: $('scroller'),
    list: $('messages'),
    outbox: $('outbox'),
    empty: $('empty'),
    older: $('older'),
    pill: $('pill'),
    typing: $('typing'),
    form: $('composer'),
    text: $('text'),
    send: $('send'),
    error: $('composer-error'),
    announcer: $('announcer')
  };

  var me = root.getAttribute('data-me');
  var room = root.getAttribute('data-room');
  var lang = docEl.getAttribute('lang') || undefined;
  var t = O.i18n.translator(O.transport.parseJSON(root.getAttribute('data-i18n') || '{}'));
  var cursor = O.Cursor.fromAttributes(root.getAttribute('data-epoch'), root.getAttribute('data-cursor'));
  var timeline = new O.Timeline();
  var outbox = new O.Outbox({ storage: tabStorage(), key: O.outbox.storageKey(room, me) });
  var transport = null;      // none on an older page
  var stopped = false;       // for good (left, expired, name taken), or leaving
  var resetting = false;     // replaying a fresh tail after a reset: no announcements

  function tabStorage() {
    try { return window.sessionStorage || null; } catch (e) { return null; }  // access can throw
  }

  // Retrying cannot help ('expired', 'name_taken', 'left_room'), whichever part found out (the
  // transport, or a POST of the outbox): the page stops, and after a leave the box closes too.
  function fail(key) {
    stop('offline', t(key));
    if (key === 'left_room') { composer.close(); }
  }

  function currentTransport() { return transport; }
  function wake() { if (transport) { transport.wake(); } }

  // ---------------------------------------------------------------- the parts

  // They call each other only through the functions given here; none calls another while it is
  // being built.
  var announcer = new O.Announcer(doc, el.announcer);
  var unread = new O.Unread({
    doc: doc, scroller: el.scroller, pill: el.pill, t: t,
    pillPressed: function () { composer.focus(); },
    seen: wake  // back on the tab: try now
  });
  var status = new O.Status({
    badge: el.status, retry: el.retry, t: t,
    announce: function (text) { announcer.say(text); },
    changed: function () { sending.updateLabels(); },
    retryPressed: function () { if (transport) { transport.connect(); } }
  });
  var typing = new O.Typing({ line: el.typing, t: t, url: root.getAttribute('data-typing-url'), transport: currentTransport });
  var users = new O.UserList({
    doc: doc, me: me, t: t, list: el.users, count: el.userCount, url: root.getAttribute('data-users-url'),
    shown: function (names) { typing.keepOnly(names); }
  });
  var composer = new O.Composer({
    form: el.form, text: el.text, send: el.send, error: el.error, t: t,
    live: live,
    submitted: function (text) {
      sending.queue(text);
      typing.sent();  // the message ends this burst
    },
    typed: function () { typing.send(); }
  });
  var sending = new O.Sending({
    doc: doc, lang: lang, me: me, box: el.outbox, outbox: outbox, timeline: timeline, cursor: cursor, t: t,
    postUrl: root.getAttribute('data-poll-url'),
    transport: currentTransport,
    connected: function () { return status.connected(); },
    errorText: function (code, detail) { return composer.errorText(code, detail); },
    toBottom: function () { unread.toBottom(); },
    focusText: function () { composer.focus(); },
    fatal: fail
  });
  var events = new O.EventList({
    doc: doc, lang: lang, me: me, t: t, list: el.list, empty: el.empty, older: el.older, scroller: el.scroller,
    timeline: timeline, cursor: cursor, pollUrl: root.getAttribute('data-poll-url'),
    joinUrl: root.getAttribute('data-join-url'),
    showError: function (text) { composer.showError(text); }
  });

  // Live sending needs a cursor; on an older page (?before=N) and after a fatal
  // error the plain form post does the work, as without JavaScript.
  function live() { return cursor.live() && !stopped; }

  // ---------------------------------------------------------------- events in

  // A live or replayed event from the stream.  Returns true when it was new.
  function ingest(e) {
    if (!cursor.take(e)) { return false; }  // at or below the cursor: already have it
    var follow = unread.atBottom();
    var index = timeline.add(e);
    if (index < 0) { return false; }
    events.added(e, index);
    sending.settle();

    var mine = e.user === me;
    if (e.type === 'message') {
      typing.done(e.user);
      if (!mine && !resetting) {
        announcer.say(e.user + ': ' + e.text);
        unread.addIfHidden();
      }
    } else if (!mine && !resetting) {
      announcer.say(t(e.type === 'join' ? 'joined' : 'left', { name: e.user }));
    }
    if (follow || (mine && e.type === 'message')) {
      unread.toBottom();
    } else if (e.type === 'message') {
      unread.addBelow();
    }
    return true;
  }

  // hello / a poll answer: when the server could not give "everything after our cursor", start
  // from its tail, which follows (the WS replay up to the presence frame, or the answer's events).
  function resume(epoch, truncated) {
    var reset = cursor.answer(epoch, truncated);
    if (!reset) { return; }
    timeline.clear();
    resetting = true;
    events.renderAll(t(reset.restarted ? 'restarted' : 'truncated'));
    events.hideOlder();
    unread.toBottom();
  }

  function resetDone() {
    if (!resetting) { return; }
    resetting = false;
    events.olderLink(true);  // shown if the tail does not start at the room's first event
  }

  // ---------------------------------------------------------------- connection

  // For good: left, expired, name taken.
  function stop(state, message) {
    stopped = true;
    if (transport) { transport.stop(); }
    status.set(state);
    if (message) {
      events.ended(message);
      unread.toBottom();
    }
  }

  function onFrame(f) {
    switch (f.type) {
      case 'message':
        ingest(f);
        break;
      case 'join':
      case 'leave':
        // After the full list (which follows the replay), each join or leave is the change.
        if (ingest(f)) { users.apply(f); }
        break;
      case 'presence':
        resetDone();  // the replay is over
        users.show(f.users || []);
        break;
      case 'typing':
        if (f.user && f.user !== me) { typing.notice(f.user); }
        break;
      case 'ack':
        sending.acked(f.client_id, f.id);
        break;
      case 'error':
        if (f.client_id) { sending.refused(f.client_id, f.error, f.detail, f.retry_after); }
        else { composer.showError(composer.errorText(f.error, f.detail)); }
        break;
    }
  }

  function onAnswer(data, first) {
    resume(data.epoch, data.truncated);
    var membersChanged = first;
    var answered = data.events || [];
    for (var i = 0; i < answered.length; i++) {
      ingest(answered[i]);
      if (answered[i].type !== 'message') { membersChanged = true; }
    }
    cursor.advance(data.cursor);
    resetDone();
    // A long-poll answer names who is typing (it carries no typing notices of its own).
    var typers = data.typing || [];
    for (i = 0; i < typers.length; i++) { onFrame({ type: 'typing', user: typers[i] }); }
    if (membersChanged) { users.refresh(); }
    sending.flush();
  }

  function connectTransport() {
    transport = new O.Transport({
      wsPath: root.getAttribute('data-ws-url'),
      eventsPath: root.getAttribute('data-events-url'),
      pollPath: root.getAttribute('data-poll-url'),
      webSocket: !!window.WebSocket,
      eventSource: !!window.EventSource
    }, cursor, {
      state: function (state, secondsLeft) { status.set(state, secondsLeft); },
      hello: function (f) { resume(f.epoch, f.truncated); sending.flush(); },
      frame: onFrame,
      answer: onAnswer,
      requeue: function () { sending.requeue(); },
      socketClosed: function () { typing.clear(); },
      fatal: fail
    });
    transport.connect();
  }

  // ---------------------------------------------------------------- start

  events.adopt();
  users.adopt();
  unread.toBottom();

  window.addEventListener('online', wake, false);
  // Leaving: stop reading first, or a poll or reconnect sent while the form goes would be a
  // request in the room after the leave (a join again, announced after the "left").
  $('leave-form').addEventListener('submit', function () {
    stopped = true;
    if (transport) { transport.stop(); }
  }, false);
  composer.autosize();
  if (!('ontouchstart' in window)) { composer.focus(); }  // phones: no keyboard popping up on load

  if (!cursor.live()) {
    status.set('history');
    return;
  }
  sending.restore();
  unread.toBottom();
  connectTransport();
}(window.Obrolan = window.Obrolan || {}));
