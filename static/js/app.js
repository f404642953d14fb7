/* Obrolan client: the room page, wired together.  Loaded last; see docs/client.md.
 * ES5 on purpose (var, function, XMLHttpRequest; no let/const/arrows/fetch/Promise) so old
 * browsers run it without a build step.
 *
 * The page works without JavaScript; this takes it over: live events (transport.js) into the
 * timeline (timeline.js, cursor.js) rendered one way (render.js), sending through the outbox
 * (outbox.js), the connection badge, typing notices, the unread count, older messages in place.
 */
(function (O) {
  'use strict';

  var TYPING_SEND_INTERVAL_MS = 2000; // the server drops more frequent notices anyway
  var TYPING_SHOW_MS = 4000;
  var TYPING_POST_TIMEOUT_MS = 10000; // a typing POST older than this is no news anymore
  var FOLLOW_SLACK_PX = 80;           // "at the bottom" if closer than this
  var ANNOUNCE_KEEP = 5;              // live-region entries kept
  var PAGE_SIZE = 50;

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

  var dom = O.dom;
  var render = O.render;
  function $(id) { return doc.getElementById(id); }
  function now() { return new Date().getTime(); }

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
  var bubbles = {};          // client_id -> its <li> in #outbox
  var ui = {
    state: 'connecting',     // what the badge shows
    stopped: false,
    left: false,             // the session left the room: the composer is closed
    resetting: false,        // replaying a fresh tail after a reset: no announcements
    posting: null,           // the outbox item a long-poll-mode POST is carrying
    typers: {},              // name -> time their notice expires
    users: null,             // the user list shown (null until the page or the server gave one)
    typingTimer: null,
    lastTypingSent: 0,
    unread: 0,
    newBelow: 0,
    baseTitle: doc.title
  };

  function tabStorage() {
    try { return window.sessionStorage || null; } catch (e) { return null; }  // access can throw
  }

  // ---------------------------------------------------------------- the timeline on screen

  function rendered(e, prev) {
    return render.decorate(render.event(doc, e, { me: me, cont: O.timeline.continues(prev, e), t: t }), lang);
  }

  function appendRendered(parent, e, prev) {
    var d = O.time.toDate(e.ts);
    var pd = prev ? O.time.toDate(prev.ts) : null;
    if (d && (!pd || render.dayKey(d) !== render.dayKey(pd))) { parent.appendChild(render.day(doc, d, lang)); }
    parent.appendChild(rendered(e, prev));
  }

  function renderAll(notice) {
    dom.clear(el.list);
    var fragment = doc.createDocumentFragment();
    if (notice) { fragment.appendChild(render.system(doc, notice)); }
    for (var i = 0; i < timeline.size(); i++) { appendRendered(fragment, timeline.events[i], timeline.before(i)); }
    el.list.appendChild(fragment);
    if (timeline.size() && el.empty) { dom.hide(el.empty); }
  }

  function updateOlderLink(hasMore) {
    var oldest = timeline.first();
    if (hasMore && oldest && oldest.id > 1) {
      el.older.href = window.location.pathname + '?before=' + oldest.id;
      dom.show(el.older);
    } else {
      dom.hide(el.older);
    }
  }

  // ---------------------------------------------------------------- scrolling, unread, announcements

  function atBottom() {
    var s = el.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= FOLLOW_SLACK_PX;
  }

  function scrollToBottom() {
    el.scroller.scrollTop = el.scroller.scrollHeight;
    ui.newBelow = 0;
    dom.hide(el.pill);
  }

  function updatePill() {
    if (ui.newBelow > 0) {
      el.pill.textContent = '\u2193 ' + t(ui.newBelow === 1 ? 'new_one' : 'new_other', { n: ui.newBelow });
      dom.show(el.pill);
    } else {
      dom.hide(el.pill);
    }
  }

  function setTitle() {
    doc.title = (ui.unread > 0 ? '(' + ui.unread + ') ' : '') + ui.baseTitle;
  }

  function pageHidden() {
    return doc.hidden === true || doc.visibilityState === 'hidden';
  }

  function announce(text) {
    el.announcer.appendChild(dom.make(doc, 'p', null, text));
    while (el.announcer.childNodes.length > ANNOUNCE_KEEP) { el.announcer.removeChild(el.announcer.firstChild); }
  }

  // ---------------------------------------------------------------- events in

  // A live or replayed event from the stream.  Returns true when it was new.
  function ingest(e) {
    if (!cursor.take(e)) { return false; }  // at or below the cursor: already have it
    var follow = atBottom();
    var index = timeline.add(e);
    if (index < 0) { return false; }
    if (index === timeline.size() - 1) {
      var fragment = doc.createDocumentFragment();
      appendRendered(fragment, e, timeline.before(index));
      el.list.appendChild(fragment);
    } else {
      renderAll(null);  // out of order (not expected from one stream): render the list again
    }
    if (el.empty) { dom.hide(el.empty); }
    settleOutbox();

    var mine = e.user === me;
    if (e.type === 'message') {
      if (ui.typers[e.user]) { delete ui.typers[e.user]; renderTyping(); }
      if (!mine && !ui.resetting) {
        announce(e.user + ': ' + e.text);
        if (pageHidden()) { ui.unread += 1; setTitle(); }
      }
    } else if (!mine && !ui.resetting) {
      announce(t(e.type === 'join' ? 'joined' : 'left', { name: e.user }));
    }
    if (follow || (mine && e.type === 'message')) {
      scrollToBottom();
    } else if (e.type === 'message') {
      ui.newBelow += 1;
      updatePill();
    }
    return true;
  }

  // hello / a poll answer: when the server could not give "everything after our cursor", start
  // from its tail, which follows (the WS replay up to the presence frame, or the answer's events).
  function resume(epoch, truncated) {
    var reset = cursor.answer(epoch, truncated);
    if (!reset) { return; }
    timeline.clear();
    ui.resetting = true;
    renderAll(t(reset.restarted ? 'restarted' : 'truncated'));
    dom.hide(el.older);
    scrollToBottom();
  }

  function resetDone() {
    if (!ui.resetting) { return; }
    ui.resetting = false;
    updateOlderLink(true);  // shown if the tail does not start at the room's first event
  }

  // ---------------------------------------------------------------- users and typing

  function renderUsers(users) {
    ui.users = users;
    dom.clear(el.users);
    for (var i = 0; i < users.length; i++) { el.users.appendChild(render.user(doc, users[i], me, t('you'))); }
    el.userCount.textContent = String(users.length);
    // Someone who left stops typing.
    var changed = false;
    for (var name in ui.typers) {
      if (ui.typers.hasOwnProperty(name) && users.indexOf(name) < 0) { delete ui.typers[name]; changed = true; }
    }
    if (changed) { renderTyping(); }
  }

  function refreshUsers() {
    O.transport.request('GET', root.getAttribute('data-users-url'), null, function (status, data) {
      if (status === 200 && data && data.users) { renderUsers(data.users); }
    }, 10000);
  }

  function renderTyping() {
    var t0 = now();
    var names = [];
    var next = null;
    for (var name in ui.typers) {
      if (!ui.typers.hasOwnProperty(name)) { continue; }
      if (ui.typers[name] > t0) {
        names.push(name);
        next = next === null ? ui.typers[name] : Math.min(next, ui.typers[name]);
      } else {
        delete ui.typers[name];
      }
    }
    names.sort();
    var text = '';
    if (names.length === 1) { text = t('typing_one', { name: names[0] }); }
    else if (names.length === 2) { text = t('typing_two', { a: names[0], b: names[1] }); }
    else if (names.length > 2) { text = t('typing_many'); }
    el.typing.textContent = text;
    if (ui.typingTimer) { clearTimeout(ui.typingTimer); ui.typingTimer = null; }
    if (next !== null) { ui.typingTimer = setTimeout(renderTyping, Math.max(50, next - t0)); }
  }

  // ---------------------------------------------------------------- connection state

  function setState(state, secondsLeft) {
    var changed = state !== ui.state;
    ui.state = state;
    var label;
    if (state === 'live') { label = t('live'); }
    else if (state === 'compat') { label = t('compat'); }
    else if (state === 'fallback') { label = t('fallback'); }
    else if (state === 'reconnecting') {
      label = secondsLeft > 0 ? t('reconnecting_in', { s: secondsLeft }) : t('reconnecting');
    }
    else if (state === 'connecting') { label = t('connecting'); }
    else if (state === 'history') { label = t('history'); }
    else { label = t('offline'); }
    el.status.setAttribute('data-state', state === 'history' ? 'static' : state);
    el.status.textContent = label;
    if (changed && state !== 'connecting') { announce(label); }
    if (state === 'reconnecting' && secondsLeft > 0) { dom.show(el.retry); } else { dom.hide(el.retry); }
    updatePendingLabels();
  }

  // For good: left, expired, name taken.
  function stop(state, message) {
    ui.stopped = true;
    if (transport) { transport.stop(); }
    setState(state);
    if (message) {
      var li = dom.make(doc, 'li', 'event system');
      li.setAttribute('role', 'note');
      li.appendChild(doc.createTextNode(message + ' '));
      var a = dom.make(doc, 'a', null, t('join_again'));
      a.href = root.getAttribute('data-join-url');
      li.appendChild(a);
      el.list.appendChild(li);
      scrollToBottom();
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
        if (ingest(f) && ui.users !== null) { renderUsers(O.users.apply(ui.users, f)); }
        break;
      case 'presence':
        resetDone();  // the replay is over
        renderUsers(f.users || []);
        break;
      case 'typing':
        if (f.user && f.user !== me) {
          ui.typers[f.user] = now() + TYPING_SHOW_MS;
          renderTyping();
        }
        break;
      case 'ack':
        acked(f.client_id, f.id);
        break;
      case 'error':
        if (f.client_id) { refused(f.client_id, f.error, f.detail, f.retry_after); }
        else { showError(errorText(f.error, f.detail)); }
        break;
    }
  }

  function onAnswer(data, first) {
    resume(data.epoch, data.truncated);
    var membersChanged = first;
    var events = data.events || [];
    for (var i = 0; i < events.length; i++) {
      ingest(events[i]);
      if (events[i].type !== 'message') { membersChanged = true; }
    }
    cursor.advance(data.cursor);
    resetDone();
    // A long-poll answer names who is typing (it carries no typing notices of its own).
    var typing = data.typing || [];
    for (i = 0; i < typing.length; i++) { onFrame({ type: 'typing', user: typing[i] }); }
    if (membersChanged) { refreshUsers(); }
    flushOutbox();
  }

  function connectTransport() {
    transport = new O.Transport({
      wsPath: root.getAttribute('data-ws-url'),
      eventsPath: root.getAttribute('data-events-url'),
      pollPath: root.getAttribute('data-poll-url'),
      webSocket: !!window.WebSocket,
      eventSource: !!window.EventSource
    }, cursor, {
      state: setState,
      hello: function (f) { resume(f.epoch, f.truncated); flushOutbox(); },
      frame: onFrame,
      answer: onAnswer,
      requeue: function () { outbox.requeueInflight(); updatePendingLabels(); },
      socketClosed: function () { ui.typers = {}; renderTyping(); },
      fatal: function (key) {
        stop('offline', t(key));
        if (key === 'left_room') { closeComposer(); }
      }
    });
    transport.connect();
  }

  // ---------------------------------------------------------------- outbox

  function bubble(item) {
    var li = render.decorate(render.pending(doc, me, item.text, item.cid), lang);
    bubbles[item.cid] = li;
    el.outbox.appendChild(li);
    itemLabel(item);
  }

  function dropBubble(item) {
    var li = bubbles[item.cid];
    delete bubbles[item.cid];
    if (li && li.parentNode) { li.parentNode.removeChild(li); }
  }

  function stateLine(li) {
    var divs = li.getElementsByTagName('div');
    for (var i = 0; i < divs.length; i++) {
      if (dom.hasClass(divs[i], 'pending-state')) { return divs[i]; }
    }
    return null;
  }

  function itemLabel(item) {
    var li = bubbles[item.cid];
    if (!li) { return; }
    var line = stateLine(li);
    dom.clear(line);
    dom.removeClass(li, 'failed');
    if (item.state === 'failed') {
      dom.addClass(li, 'failed');
      line.appendChild(doc.createTextNode(t('failed', { detail: errorText(item.code, item.error) })));
      var retry = dom.make(doc, 'button', 'secondary', t('retry'));
      retry.type = 'button';
      retry.onclick = function () { outbox.retry(item); flushOutbox(); };
      var remove = dom.make(doc, 'button', 'secondary', t('remove'));
      remove.type = 'button';
      remove.onclick = function () { outbox.remove(item); dropBubble(item); el.text.focus(); };
      line.appendChild(retry);
      line.appendChild(remove);
      return;
    }
    var connected = ui.state === 'live' || ui.state === 'compat' || ui.state === 'fallback';
    var label = item.state === 'acked' ? t('sent') : connected ? t('sending') : t('waiting');
    line.appendChild(doc.createTextNode(label));
  }

  function updatePendingLabels() {
    for (var i = 0; i < outbox.items.length; i++) { itemLabel(outbox.items[i]); }
  }

  function queueMessage(text) {
    bubble(outbox.queue(text));
    scrollToBottom();
    flushOutbox();
  }

  // Send what waits, in order: all at once over a WebSocket, one POST at a time otherwise
  // (an event stream or long-poll only reads).
  function flushOutbox() {
    var due = outbox.due();
    if (transport && transport.streaming()) {
      for (var i = 0; i < due.length; i++) {
        if (!transport.send({ type: 'message', text: due[i].text, client_id: due[i].cid })) { break; }
        outbox.sent(due[i]);
      }
    } else if (transport && transport.posts() && !ui.posting && due.length) {
      postItem(due[0]);
    }
    updatePendingLabels();
  }

  function postItem(item) {
    ui.posting = item;
    outbox.sent(item);
    O.transport.request('POST', root.getAttribute('data-poll-url'), { text: item.text, client_id: item.cid },
      function (status, data, xhr) {
        ui.posting = null;
        var key = O.transport.fatalStatus(status);
        var retryIn = outbox.posted(item, status, data, xhr.getResponseHeader('Retry-After'));
        if (key) { stop('offline', t(key)); return; }
        if (item.state === 'acked') { settleOutbox(); }
        if (retryIn !== null) { setTimeout(flushOutbox, retryIn + 10); }
        flushOutbox();
      }, 30000);
  }

  function acked(cid, id) {
    if (!outbox.ack(cid, id)) { return; }
    settleOutbox();
    updatePendingLabels();
  }

  function refused(cid, code, detail, retryAfter) {
    var r = outbox.refused(cid, code, detail, retryAfter);
    if (r && r.retryInMs !== null) { setTimeout(flushOutbox, r.retryInMs + 10); }
    updatePendingLabels();
  }

  // An acknowledged item disappears once its event is in the timeline (or the
  // stream has moved past it, e.g. after a reset to a shorter tail).
  function settleOutbox() {
    var gone = outbox.settle(function (id) { return timeline.has(id) || cursor.passed(id); });
    for (var i = 0; i < gone.length; i++) { dropBubble(gone[i]); }
  }

  // ---------------------------------------------------------------- older messages

  function loadOlder(ev) {
    if (!timeline.size()) { return; }
    if (ev && ev.preventDefault) { ev.preventDefault(); }
    if (el.older.getAttribute('aria-busy') === 'true') { return; }
    var before = timeline.first().id;
    var epoch = cursor.epoch;
    el.older.setAttribute('aria-busy', 'true');
    el.older.textContent = t('loading');
    var url = root.getAttribute('data-poll-url') + '?before=' + before + '&limit=' + PAGE_SIZE;
    O.transport.request('GET', url, null, function (status, data) {
      el.older.removeAttribute('aria-busy');
      el.older.textContent = t('older');
      if (status !== 200 || !data) { showError(t('load_failed')); return; }
      if (data.epoch !== epoch || !timeline.size() || timeline.first().id !== before) { return; }  // reset meanwhile
      var fromBottom = el.scroller.scrollHeight - el.scroller.scrollTop;
      timeline.addOlder(data.events);
      renderAll(null);
      el.scroller.scrollTop = el.scroller.scrollHeight - fromBottom;  // keep the reader's place
      updateOlderLink(!!data.has_more);
    }, 15000);
  }

  // ---------------------------------------------------------------- composer

  // An error code in words for a person (the page's error_<code> strings, handlers/messages.py);
  // the server's detail (written for developers) only for a code the page has no words for.
  function errorText(code, detail) {
    var key = 'error_' + code;
    var text = code ? t(key) : key;
    return text !== key ? text : (detail || code || '');
  }

  var composerErrorTimer = null;
  function showError(text) {
    if (!el.error) { return; }
    el.error.textContent = text;
    dom.show(el.error);
    if (composerErrorTimer) { clearTimeout(composerErrorTimer); }
    composerErrorTimer = setTimeout(function () { dom.hide(el.error); }, 6000);
  }

  function autosize() {
    el.text.style.height = 'auto';
    el.text.style.height = Math.min(el.text.scrollHeight + 2, 160) + 'px';
  }

  function submit() {
    var text = el.text.value.replace(/^\s+|\s+$/g, '');
    if (!text) { el.text.value = ''; autosize(); return; }
    queueMessage(text);
    ui.lastTypingSent = 0;  // the message ends this burst: the next keystroke says "typing" at once
    el.text.value = '';
    autosize();
    dom.hide(el.error);
  }

  // Over the WebSocket when it is up, else by POST /typing (event stream and long-poll readers).
  function sendTyping() {
    if (!transport || !(transport.streaming() || transport.posts())) { return; }
    var t0 = now();
    if (t0 - ui.lastTypingSent < TYPING_SEND_INTERVAL_MS) { return; }
    ui.lastTypingSent = t0;
    if (transport.streaming()) {
      transport.send('{"type":"typing"}');
    } else {
      // Best effort: a lost notice only means nobody sees "typing" for a moment.
      O.transport.request('POST', root.getAttribute('data-typing-url'), {}, function () {}, TYPING_POST_TIMEOUT_MS);
    }
  }

  // The session left the room (maybe in another tab): a form post now would join it again
  // silently, so nothing is sent until the person chooses "Join again" (what was typed stays).
  function closeComposer() {
    ui.left = true;
    el.text.disabled = true;
    el.send.disabled = true;
  }

  // Live sending needs a cursor; on an older page (?before=N) and after a fatal
  // error the plain form post does the work, as without JavaScript.
  function live() { return cursor.live() && !ui.stopped; }

  // ---------------------------------------------------------------- start

  // Take over the server-rendered events; render.js renders them the same way, decorated
  // (local times, avatar colours) and with day separators.
  var items = el.list.getElementsByTagName('li');
  var i;
  var found = [];
  for (i = 0; i < items.length; i++) {
    if (items[i].getAttribute('data-id')) { found.push(render.readEvent(items[i])); }
  }
  for (i = 0; i < found.length; i++) { timeline.add(found[i]); }
  renderAll(null);
  var userItems = el.users.getElementsByTagName('li');
  var initialUsers = [];
  for (i = 0; i < userItems.length; i++) { initialUsers.push(userItems[i].getAttribute('data-name')); }
  renderUsers(initialUsers);
  el.older.addEventListener('click', loadOlder, false);
  scrollToBottom();

  el.scroller.addEventListener('scroll', function () {
    if (ui.newBelow > 0 && atBottom()) { ui.newBelow = 0; updatePill(); }
  }, false);
  el.pill.addEventListener('click', function () { scrollToBottom(); el.text.focus(); }, false);

  doc.addEventListener('visibilitychange', function () {
    if (!pageHidden()) {
      ui.unread = 0;
      setTitle();
      if (transport) { transport.wake(); }  // back on the tab: try now
    }
  }, false);
  window.addEventListener('online', function () { if (transport) { transport.wake(); } }, false);
  el.retry.addEventListener('click', function () { if (transport) { transport.connect(); } }, false);

  // Leaving: stop reading first, or a poll or reconnect sent while the form goes would be a
  // request in the room after the leave (a join again, announced after the "left").
  $('leave-form').addEventListener('submit', function () {
    ui.stopped = true;
    if (transport) { transport.stop(); }
  }, false);
  el.form.addEventListener('submit', function (ev) {
    if (ui.left) { ev.preventDefault(); return; }
    if (!live()) { return; }
    ev.preventDefault();
    submit();
    el.text.focus();
  }, false);
  el.text.addEventListener('keydown', function (ev) {
    var enter = ev.key === 'Enter' || ev.keyCode === 13;
    if (!enter || ev.shiftKey || ev.isComposing || ev.keyCode === 229) { return; }  // 229: IME at work
    ev.preventDefault();
    if (live()) { submit(); } else if (el.text.value.replace(/\s+/g, '')) { el.form.submit(); }
  }, false);
  el.text.addEventListener('input', function () {
    autosize();
    if (el.text.value.replace(/\s+/g, '')) { sendTyping(); }
  }, false);
  autosize();
  if (!('ontouchstart' in window)) { el.text.focus(); }  // phones: no keyboard popping up on load

  if (!cursor.live()) {
    setState('history');
    return;
  }
  var restored = outbox.restore();
  for (i = 0; i < restored.length; i++) { bubble(restored[i]); }
  scrollToBottom();
  connectTransport();
}(window.Obrolan = window.Obrolan || {}));
