/* Obrolan chat page client.
 *
 * ES5 on purpose (var, function, XMLHttpRequest; no let/const/arrows/fetch/Promise)
 * so old browsers run it without a build step.  See docs/client.md.
 *
 * Transport: WebSocket first; where it is missing, or fails while plain HTTP works,
 * long-poll.  Either way the client resumes from the last event id it has
 * (`after=` + `epoch=`), drops anything at or below that id, and re-renders from
 * the tail with a notice when the server says `truncated`.
 * Sending: every message gets a client_id and waits in the outbox until the
 * server acknowledges it (WS ack or HTTP 201); a resend after a reconnect reuses
 * the client_id, so the server stores it once.  What is not yet acknowledged is
 * also kept in sessionStorage and sent again (same client_id) after a reload.
 * User data only ever reaches the DOM through textContent / createTextNode.
 */
(function () {
  'use strict';

  var BACKOFF_BASE_MS = 500;
  var BACKOFF_MAX_MS = 30000;
  var WS_OPEN_TIMEOUT_MS = 10000;     // a handshake hanging this long counts as failed
  var WS_BLOCKED_AFTER = 2;           // WS failures while HTTP works before falling back
  var POLL_WAIT_S = 25;
  var POLL_SLACK_MS = 15000;          // XHR timeout beyond the server's wait
  var TYPING_SEND_INTERVAL_MS = 2000; // the server drops more frequent notices anyway
  var TYPING_SHOW_MS = 4000;
  var GROUP_WINDOW_MS = 5 * 60 * 1000;
  var FOLLOW_SLACK_PX = 80;           // "at the bottom" if closer than this
  var ANNOUNCE_KEEP = 5;              // live-region entries kept
  var PAGE_SIZE = 50;
  var STORE_RETRY_MS = 2000;

  var docEl = document.documentElement;
  docEl.className = docEl.className.replace(/(^|\s)no-js(\s|$)/, '$1js$2');

  var root = document.getElementById('chat');
  if (!root) { return; }

  // ---------------------------------------------------------------- helpers

  function $(id) { return document.getElementById(id); }

  function hasClass(el, name) {
    return (' ' + el.className + ' ').indexOf(' ' + name + ' ') >= 0;
  }
  function addClass(el, name) {
    if (!hasClass(el, name)) { el.className = (el.className ? el.className + ' ' : '') + name; }
  }
  function removeClass(el, name) {
    el.className = (' ' + el.className + ' ').replace(' ' + name + ' ', ' ').replace(/^\s+|\s+$/g, '');
  }
  function show(el) { if (el) { el.removeAttribute('hidden'); } }
  function hide(el) { if (el) { el.setAttribute('hidden', ''); } }
  function clear(el) { while (el.firstChild) { el.removeChild(el.firstChild); } }

  function make(tag, className, text) {
    var el = document.createElement(tag);
    if (className) { el.className = className; }
    if (text !== undefined && text !== null) { el.appendChild(document.createTextNode(String(text))); }
    return el;
  }

  function parseJSON(text) {
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  function now() { return new Date().getTime(); }

  var strings = parseJSON(root.getAttribute('data-i18n') || '{}') || {};

  // Translated UI text with %(name)s / %(n)d placeholders filled in.
  function t(key, params) {
    var s = strings.hasOwnProperty(key) ? strings[key] : key;
    return s.replace(/%\((\w+)\)[sd]/g, function (match, name) {
      return params && params.hasOwnProperty(name) ? String(params[name]) : match;
    });
  }

  // Eight well-separated hues; a name always gets the same one.
  var AVATAR_HUES = [172, 214, 262, 330, 22, 140, 45, 0];
  function hue(name) {
    var h = 5381;
    for (var i = 0; i < name.length; i++) { h = (h * 33 + name.charCodeAt(i)) % 2147483647; }
    return AVATAR_HUES[h % AVATAR_HUES.length];
  }

  function avatar(name) {
    var el = make('span', 'avatar', (name.charAt(0) || '?').toUpperCase());
    el.setAttribute('aria-hidden', 'true');
    if (el.style.setProperty) { el.style.setProperty('--hue', String(hue(name))); }
    return el;
  }

  function pad2(n) { return n < 10 ? '0' + n : String(n); }

  function parseTs(ts) {
    var d = new Date(ts);
    return isNaN(d.getTime()) ? null : d;
  }

  var lang = docEl.getAttribute('lang') || undefined;

  function localTime(d) {
    try {
      return d.toLocaleTimeString(lang, { hour: 'numeric', minute: '2-digit' });
    } catch (e) {
      return pad2(d.getHours()) + ':' + pad2(d.getMinutes());
    }
  }

  function localDay(d) {
    try {
      return d.toLocaleDateString(lang, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
    } catch (e) {
      return d.toDateString();
    }
  }

  function dayKey(d) { return d.getFullYear() + '-' + d.getMonth() + '-' + d.getDate(); }

  // Text with http(s) URLs as links; everything else stays text.
  var URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
  var TRAILING_RE = /[.,;:!?'")\]}]+$/;

  function richText(parent, text) {
    var last = 0;
    var match;
    URL_RE.lastIndex = 0;
    while ((match = URL_RE.exec(text)) !== null) {
      var url = match[0];
      var trail = TRAILING_RE.exec(url);
      if (trail) {
        // Keep a closing bracket that closes one opened inside the URL.
        var cut = trail[0];
        url = url.slice(0, url.length - cut.length);
        if (cut.charAt(0) === ')' && url.indexOf('(') >= 0) { url += ')'; }
      }
      if (match.index > last) { parent.appendChild(document.createTextNode(text.slice(last, match.index))); }
      var a = make('a', null, url);
      a.href = url;
      a.rel = 'noopener noreferrer nofollow';
      a.target = '_blank';
      parent.appendChild(a);
      last = match.index + url.length;
      URL_RE.lastIndex = last;
    }
    if (last < text.length) { parent.appendChild(document.createTextNode(text.slice(last))); }
  }

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

  // ---------------------------------------------------------------- elements

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
    error: $('composer-error'),
    announcer: $('announcer')
  };

  var cursorAttr = root.getAttribute('data-cursor');
  var cfg = {
    room: root.getAttribute('data-room'),
    me: root.getAttribute('data-me'),
    wsPath: root.getAttribute('data-ws-url'),
    pollPath: root.getAttribute('data-poll-url'),
    usersPath: root.getAttribute('data-users-url'),
    joinUrl: root.getAttribute('data-join-url')
  };

  var S = {
    epoch: root.getAttribute('data-epoch') || null,
    cursor: cursorAttr === '' || cursorAttr === null ? null : parseInt(cursorAttr, 10),
    events: [],              // rendered events, ascending id
    ids: {},                 // id -> true
    mode: window.WebSocket ? 'ws' : 'poll',
    state: 'connecting',
    transport: null,         // 'ws' | 'poll' while one is up
    ws: null,
    pollXhr: null,
    attempt: 0,              // consecutive failures, for the backoff
    wsBlocked: 0,            // WS failures while HTTP answered
    timer: null,
    countdown: null,
    retryAt: 0,
    outbox: [],
    posting: null,           // the outbox item a long-poll-mode POST is carrying
    typers: {},              // name -> time their notice expires
    typingTimer: null,
    lastTypingSent: 0,
    unread: 0,
    newBelow: 0,
    resetting: false,        // replaying a fresh tail after a reset: no announcements
    stopped: false,
    baseTitle: document.title
  };

  // ---------------------------------------------------------------- rendering

  function eventFromLi(li) {
    var textEl = li.querySelector ? li.querySelector('.text') : null;
    return {
      id: parseInt(li.getAttribute('data-id'), 10),
      type: li.getAttribute('data-type'),
      user: li.getAttribute('data-user'),
      ts: li.getAttribute('data-ts'),
      text: textEl ? (textEl.textContent !== undefined ? textEl.textContent : textEl.innerText) : null
    };
  }

  function continues(prev, e) {
    if (!prev || prev.type !== 'message' || e.type !== 'message' || prev.user !== e.user) { return false; }
    var a = parseTs(prev.ts);
    var b = parseTs(e.ts);
    return !!(a && b && b.getTime() - a.getTime() >= 0 && b.getTime() - a.getTime() <= GROUP_WINDOW_MS);
  }

  function timeEl(ts) {
    var d = parseTs(ts);
    var time = make('time', null, d ? localTime(d) : '');
    time.setAttribute('datetime', ts);
    if (d) { time.title = d.toLocaleString ? d.toLocaleString() : String(d); }
    return time;
  }

  function messageBody(li, user, text, ts) {
    li.appendChild(avatar(user));
    var meta = make('div', 'meta');
    meta.appendChild(make('span', 'user', user));
    meta.appendChild(document.createTextNode(' '));
    if (ts) { meta.appendChild(timeEl(ts)); }
    li.appendChild(meta);
    var p = make('p', 'text');
    richText(p, text);
    li.appendChild(p);
  }

  function renderEvent(e, prev) {
    var li;
    if (e.type === 'message') {
      li = make('li', 'event message');
      if (e.user === cfg.me) { addClass(li, 'mine'); }
      if (continues(prev, e)) { addClass(li, 'cont'); }
      messageBody(li, e.user, e.text || '', e.ts);
    } else {
      li = make('li', 'event notice ' + e.type);
      li.appendChild(make('span', 'notice-text', t(e.type === 'join' ? 'joined' : 'left', { name: e.user })));
      li.appendChild(document.createTextNode(' '));
      li.appendChild(timeEl(e.ts));
    }
    li.setAttribute('data-id', String(e.id));
    li.setAttribute('data-type', e.type);
    li.setAttribute('data-user', e.user);
    li.setAttribute('data-ts', e.ts);
    return li;
  }

  function appendRendered(fragment, e, prev) {
    var d = parseTs(e.ts);
    var pd = prev ? parseTs(prev.ts) : null;
    if (d && (!pd || dayKey(d) !== dayKey(pd))) {
      var day = make('li', 'day', localDay(d));
      day.setAttribute('role', 'presentation');
      fragment.appendChild(day);
    }
    fragment.appendChild(renderEvent(e, prev));
  }

  function renderAll(notice) {
    clear(el.list);
    var fragment = document.createDocumentFragment();
    if (notice) {
      var li = make('li', 'event system', notice);
      li.setAttribute('role', 'note');
      fragment.appendChild(li);
    }
    for (var i = 0; i < S.events.length; i++) {
      appendRendered(fragment, S.events[i], i > 0 ? S.events[i - 1] : null);
    }
    el.list.appendChild(fragment);
    if (S.events.length && el.empty) { hide(el.empty); }
  }

  function updateOlderLink(hasMore) {
    var oldest = S.events.length ? S.events[0].id : null;
    if (hasMore && oldest !== null && oldest > 1) {
      el.older.href = window.location.pathname + '?before=' + oldest;
      show(el.older);
    } else {
      hide(el.older);
    }
  }

  // ---------------------------------------------------------------- scrolling, unread, announcements

  function atBottom() {
    var s = el.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= FOLLOW_SLACK_PX;
  }

  function scrollToBottom() {
    el.scroller.scrollTop = el.scroller.scrollHeight;
    S.newBelow = 0;
    hide(el.pill);
  }

  function updatePill() {
    if (S.newBelow > 0) {
      el.pill.textContent = '\u2193 ' + t(S.newBelow === 1 ? 'new_one' : 'new_other', { n: S.newBelow });
      show(el.pill);
    } else {
      hide(el.pill);
    }
  }

  function setTitle() {
    document.title = (S.unread > 0 ? '(' + S.unread + ') ' : '') + S.baseTitle;
  }

  function pageHidden() {
    return document.hidden === true || document.visibilityState === 'hidden';
  }

  function announce(text) {
    var p = make('p', null, text);
    el.announcer.appendChild(p);
    while (el.announcer.childNodes.length > ANNOUNCE_KEEP) { el.announcer.removeChild(el.announcer.firstChild); }
  }

  // ---------------------------------------------------------------- events in

  // A live or replayed event from the stream.  Returns true when it was new.
  function ingest(e) {
    if (!e || typeof e.id !== 'number') { return false; }
    if (S.cursor !== null && e.id <= S.cursor) { return false; }  // already have it
    S.cursor = e.id;
    if (S.ids[e.id]) { return false; }
    var follow = atBottom();
    var prev = S.events.length ? S.events[S.events.length - 1] : null;
    S.events.push(e);
    S.ids[e.id] = true;
    var fragment = document.createDocumentFragment();
    appendRendered(fragment, e, prev);
    el.list.appendChild(fragment);
    if (el.empty) { hide(el.empty); }
    settleOutbox();

    var mine = e.user === cfg.me;
    if (e.type === 'message') {
      if (S.typers[e.user]) { delete S.typers[e.user]; renderTyping(); }
      if (!mine && !S.resetting) {
        announce(e.user + ': ' + e.text);
        if (pageHidden()) { S.unread += 1; setTitle(); }
      }
    } else if (!mine && !S.resetting) {
      announce(t(e.type === 'join' ? 'joined' : 'left', { name: e.user }));
    }
    if (follow || (mine && e.type === 'message')) {
      scrollToBottom();
    } else if (e.type === 'message') {
      S.newBelow += 1;
      updatePill();
    }
    return true;
  }

  // The server could not give "everything after our cursor": start from its tail,
  // which follows (WS replay up to the presence frame, or the poll answer's events).
  function resetTimeline(epoch, restarted) {
    S.events = [];
    S.ids = {};
    S.cursor = 0;
    S.epoch = epoch;
    S.resetting = true;
    renderAll(t(restarted ? 'restarted' : 'truncated'));
    hide(el.older);
    scrollToBottom();
  }

  function resetDone() {
    if (!S.resetting) { return; }
    S.resetting = false;
    updateOlderLink(true);  // shown if the tail does not start at the room's first event
  }

  function renderUsers(users) {
    clear(el.users);
    for (var i = 0; i < users.length; i++) {
      var li = make('li', users[i] === cfg.me ? 'me' : null);
      li.appendChild(avatar(users[i]));
      li.appendChild(make('span', 'name', users[i]));
      if (users[i] === cfg.me) {
        li.appendChild(document.createTextNode(' '));
        li.appendChild(make('span', 'you', '(' + t('you') + ')'));
      }
      el.users.appendChild(li);
    }
    el.userCount.textContent = String(users.length);
    // Someone who left stops typing.
    var changed = false;
    for (var name in S.typers) {
      if (S.typers.hasOwnProperty(name) && users.indexOf(name) < 0) { delete S.typers[name]; changed = true; }
    }
    if (changed) { renderTyping(); }
  }

  function refreshUsers() {
    request('GET', cfg.usersPath, null, function (status, data) {
      if (status === 200 && data && data.users) { renderUsers(data.users); }
    }, 10000);
  }

  function renderTyping() {
    var t0 = now();
    var names = [];
    var next = null;
    for (var name in S.typers) {
      if (!S.typers.hasOwnProperty(name)) { continue; }
      if (S.typers[name] > t0) {
        names.push(name);
        next = next === null ? S.typers[name] : Math.min(next, S.typers[name]);
      } else {
        delete S.typers[name];
      }
    }
    names.sort();
    var text = '';
    if (names.length === 1) { text = t('typing_one', { name: names[0] }); }
    else if (names.length === 2) { text = t('typing_two', { a: names[0], b: names[1] }); }
    else if (names.length > 2) { text = t('typing_many'); }
    el.typing.textContent = text;
    if (S.typingTimer) { clearTimeout(S.typingTimer); S.typingTimer = null; }
    if (next !== null) { S.typingTimer = setTimeout(renderTyping, Math.max(50, next - t0)); }
  }

  // ---------------------------------------------------------------- connection state

  function setState(state, extra) {
    var changed = state !== S.state;
    S.state = state;
    var label;
    if (state === 'live') { label = t('live'); }
    else if (state === 'fallback') { label = t('fallback'); }
    else if (state === 'reconnecting') {
      label = extra > 0 ? t('reconnecting_in', { s: extra }) : t('reconnecting');
    }
    else if (state === 'connecting') { label = t('connecting'); }
    else if (state === 'history') { label = t('history'); }
    else { label = t('offline'); }
    el.status.setAttribute('data-state', state === 'history' ? 'static' : state);
    el.status.textContent = label;
    if (changed && state !== 'connecting') { announce(label); }
    if (state === 'reconnecting' && extra > 0) { show(el.retry); } else { hide(el.retry); }
    updatePendingLabels();
  }

  function clearTimers() {
    if (S.timer) { clearTimeout(S.timer); S.timer = null; }
    if (S.countdown) { clearInterval(S.countdown); S.countdown = null; }
  }

  function tick() {
    var left = Math.max(1, Math.ceil((S.retryAt - now()) / 1000));
    setState('reconnecting', left);
  }

  // Full-jitter exponential backoff: a random delay in [d/2, d], d doubling per failure.
  function scheduleReconnect() {
    if (S.stopped) { return; }
    clearTimers();
    var ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, S.attempt));
    var delay = ceiling / 2 + Math.random() * ceiling / 2;
    S.attempt += 1;
    S.retryAt = now() + delay;
    tick();
    S.countdown = setInterval(tick, 1000);
    S.timer = setTimeout(connect, delay);
  }

  function stop(state, message) {
    S.stopped = true;
    clearTimers();
    closeTransport();
    setState(state);
    if (message) {
      var li = make('li', 'event system');
      li.setAttribute('role', 'note');
      li.appendChild(document.createTextNode(message + ' '));
      var a = make('a', null, t('join_again'));
      a.href = cfg.joinUrl;
      li.appendChild(a);
      el.list.appendChild(li);
      scrollToBottom();
    }
  }

  function closeTransport() {
    var ws = S.ws;
    S.ws = null;
    if (ws) { try { ws.close(); } catch (e) { /* already closed */ } }
    var xhr = S.pollXhr;
    S.pollXhr = null;  // its callback sees it is stale and does nothing
    if (xhr) { try { xhr.abort(); } catch (e) { /* already done */ } }
    S.transport = null;
    requeueInflight();  // sent on a connection we dropped: resend (same client_id) on the next
  }

  function connect() {
    clearTimers();
    if (S.stopped) { return; }
    closeTransport();
    if (S.state !== 'reconnecting' && S.state !== 'fallback') { setState('connecting'); }
    else if (S.state === 'reconnecting') { setState('reconnecting', 0); }
    if (S.mode === 'ws') { openSocket(); } else { poll(); }
  }

  function query(extra) {
    var parts = [];
    if (S.cursor !== null) { parts.push('after=' + S.cursor); }
    if (S.epoch) { parts.push('epoch=' + encodeURIComponent(S.epoch)); }
    if (extra) { parts.push(extra); }
    return parts.length ? '?' + parts.join('&') : '';
  }

  // An HTTP status that means retrying cannot help.
  function fatalStatus(status) {
    if (status === 401) { stop('offline', t('expired')); return true; }
    if (status === 409) { stop('offline', t('name_taken')); return true; }
    return false;
  }

  // ---------------------------------------------------------------- WebSocket

  function openSocket() {
    var loc = window.location;
    var url = (loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + cfg.wsPath + query();
    var ws;
    var hello = false;
    try {
      ws = new window.WebSocket(url);
    } catch (e) {
      socketFailed(false, 1006);
      return;
    }
    S.ws = ws;
    var openTimer = setTimeout(function () {
      if (!hello && S.ws === ws) { try { ws.close(); } catch (e) { /* ignore */ } }
    }, WS_OPEN_TIMEOUT_MS);

    ws.onmessage = function (msg) {
      if (S.ws !== ws) { return; }
      var frame = parseJSON(msg.data);
      if (!frame) { return; }
      if (frame.type === 'hello') { hello = true; clearTimeout(openTimer); }
      onFrame(frame);
    };
    ws.onclose = function (ev) {
      clearTimeout(openTimer);
      if (S.ws !== ws) { return; }
      S.ws = null;
      S.transport = null;
      socketFailed(hello, ev.code);
    };
  }

  function onFrame(f) {
    switch (f.type) {
      case 'hello':
        S.transport = 'ws';
        S.attempt = 0;
        S.wsBlocked = 0;
        if (f.truncated) { resetTimeline(f.epoch, S.epoch !== null && f.epoch !== S.epoch); }
        S.epoch = f.epoch;
        setState('live');
        flushOutbox();
        break;
      case 'message':
      case 'join':
      case 'leave':
        ingest(f);
        break;
      case 'presence':
        resetDone();  // the replay is over
        renderUsers(f.users || []);
        break;
      case 'typing':
        if (f.user && f.user !== cfg.me) {
          S.typers[f.user] = now() + TYPING_SHOW_MS;
          renderTyping();
        }
        break;
      case 'ack':
        acked(f.client_id, f.id);
        break;
      case 'error':
        if (f.client_id) { sendFailed(f.client_id, f.error, f.detail, f.retry_after); }
        else { showError(f.detail || f.error); }
        break;
    }
  }

  function socketFailed(wasLive, code) {
    requeueInflight();
    S.typers = {};
    renderTyping();
    if (code === 1000) { stop('offline', t('left_room')); return; }     // we left (maybe in another tab)
    if (code === 4409) { stop('offline', t('name_taken')); return; }
    if (wasLive) {
      scheduleReconnect();  // after 1001 (restart), 1013 (too slow), a network drop...
      return;
    }
    // Never got going.  Ask plain HTTP whether the server is there at all.
    setState('reconnecting', 0);
    S.pollXhr = request('GET', pollUrl('wait=0'), null, function (status, data, xhr) {
      if (S.pollXhr !== xhr) { return; }
      S.pollXhr = null;
      if (S.stopped) { return; }
      if (fatalStatus(status)) { return; }
      if (status === 200 && data) {
        S.wsBlocked += 1;
        if (S.wsBlocked >= WS_BLOCKED_AFTER) {
          // HTTP works and WebSocket does not (a proxy, an old server): long-poll from here on.
          S.mode = 'poll';
          pollAnswer(data);
          return;
        }
      }
      scheduleReconnect();
    }, POLL_SLACK_MS);
  }

  function pollUrl(extra) { return cfg.pollPath + query(extra); }

  // ---------------------------------------------------------------- long-poll

  function poll() {
    // The first poll of a connection answers at once (we are live from then on); later ones wait.
    var wait = S.transport === 'poll' ? POLL_WAIT_S : 0;
    S.pollXhr = request('GET', pollUrl('wait=' + wait), null, function (status, data, xhr) {
      if (S.pollXhr !== xhr) { return; }
      S.pollXhr = null;
      if (S.stopped) { return; }
      if (fatalStatus(status)) { return; }
      if (status === 200 && data) { pollAnswer(data); return; }
      if (status === 400) { S.cursor = null; }  // our cursor was refused: start from the tail
      S.transport = null;
      requeueInflight();
      scheduleReconnect();
    }, wait * 1000 + POLL_SLACK_MS);
  }

  function pollAnswer(data) {
    var first = S.transport !== 'poll';
    S.transport = 'poll';
    S.attempt = 0;
    if (data.truncated) { resetTimeline(data.epoch, S.epoch !== null && data.epoch !== S.epoch); }
    S.epoch = data.epoch;
    var membersChanged = first;
    var events = data.events || [];
    for (var i = 0; i < events.length; i++) {
      ingest(events[i]);
      if (events[i].type !== 'message') { membersChanged = true; }
    }
    if (typeof data.cursor === 'number' && (S.cursor === null || data.cursor > S.cursor)) { S.cursor = data.cursor; }
    resetDone();
    if (S.state !== 'fallback') { setState('fallback'); }
    if (membersChanged) { refreshUsers(); }
    flushOutbox();
    S.timer = setTimeout(poll, 0);
  }

  // ---------------------------------------------------------------- outbox

  var cidCounter = 0;
  function newClientId() {
    var rand = '';
    var cryptoObj = window.crypto || window.msCrypto;
    if (cryptoObj && cryptoObj.getRandomValues) {
      var buf = new Uint32Array(3);
      cryptoObj.getRandomValues(buf);
      for (var i = 0; i < buf.length; i++) { rand += buf[i].toString(36); }
    } else {
      rand = Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
    }
    cidCounter += 1;
    return 'c' + now().toString(36) + '-' + cidCounter + '-' + rand;
  }

  function findItem(cid) {
    for (var i = 0; i < S.outbox.length; i++) {
      if (S.outbox[i].cid === cid) { return S.outbox[i]; }
    }
    return null;
  }

  function removeItem(item) {
    for (var i = 0; i < S.outbox.length; i++) {
      if (S.outbox[i] === item) { S.outbox.splice(i, 1); break; }
    }
    if (item.el && item.el.parentNode) { item.el.parentNode.removeChild(item.el); }
    saveOutbox();
  }

  // The unacknowledged part of the outbox is kept in sessionStorage (this tab only) so a
  // reload or a restored tab sends it again with the same client_id: the server stores it
  // once.  Without storage (blocked, full) the outbox lives in the page alone.
  var OUTBOX_KEY = 'obrolan-outbox:' + cfg.room + ':' + cfg.me;

  function tabStorage() {
    try { return window.sessionStorage || null; } catch (e) { return null; }  // access can throw
  }

  function saveOutbox() {
    var store = tabStorage();
    if (!store) { return; }
    var keep = [];
    for (var i = 0; i < S.outbox.length; i++) {
      if (S.outbox[i].state !== 'acked') { keep.push({ cid: S.outbox[i].cid, text: S.outbox[i].text }); }
    }
    try {
      if (keep.length) { store.setItem(OUTBOX_KEY, JSON.stringify(keep)); } else { store.removeItem(OUTBOX_KEY); }
    } catch (e) { /* quota or refused: the page still has them */ }
  }

  // Back in the outbox, as waiting: connect() sends them once the stream is up.
  function restoreOutbox() {
    var store = tabStorage();
    var saved = null;
    if (!store) { return; }
    try { saved = JSON.parse(store.getItem(OUTBOX_KEY) || 'null'); } catch (e) { saved = null; }
    if (!saved || typeof saved.length !== 'number') { return; }
    for (var i = 0; i < saved.length; i++) {
      var entry = saved[i];
      if (!entry || typeof entry.cid !== 'string' || typeof entry.text !== 'string' || findItem(entry.cid)) { continue; }
      var item = { cid: entry.cid, text: entry.text, state: 'queued', id: null, error: null, el: null, notBefore: 0 };
      S.outbox.push(item);
      renderItem(item);
      itemLabel(item);
    }
  }

  function renderItem(item) {
    var li = make('li', 'event message mine pending');
    li.setAttribute('data-client-id', item.cid);
    messageBody(li, cfg.me, item.text, null);
    item.stateEl = make('div', 'pending-state');
    li.appendChild(item.stateEl);
    item.el = li;
    el.outbox.appendChild(li);
  }

  function itemLabel(item) {
    clear(item.stateEl);
    removeClass(item.el, 'failed');
    if (item.state === 'failed') {
      addClass(item.el, 'failed');
      item.stateEl.appendChild(document.createTextNode(t('failed', { detail: item.error })));
      var retry = make('button', 'secondary', t('retry'));
      retry.type = 'button';
      retry.onclick = function () { item.state = 'queued'; flushOutbox(); };
      var remove = make('button', 'secondary', t('remove'));
      remove.type = 'button';
      remove.onclick = function () { removeItem(item); el.text.focus(); };
      item.stateEl.appendChild(retry);
      item.stateEl.appendChild(remove);
      return;
    }
    var connected = S.state === 'live' || S.state === 'fallback';
    var label = item.state === 'acked' ? t('sent') : connected ? t('sending') : t('waiting');
    item.stateEl.appendChild(document.createTextNode(label));
  }

  function updatePendingLabels() {
    for (var i = 0; i < S.outbox.length; i++) { itemLabel(S.outbox[i]); }
  }

  function queueMessage(text) {
    var item = { cid: newClientId(), text: text, state: 'queued', id: null, error: null, el: null, notBefore: 0 };
    S.outbox.push(item);
    saveOutbox();
    renderItem(item);
    itemLabel(item);
    scrollToBottom();
    flushOutbox();
  }

  // Send what waits, in order: all at once over a WebSocket, one POST at a time otherwise.
  function flushOutbox() {
    var t0 = now();
    var i, item;
    if (S.transport === 'ws' && S.ws && S.state === 'live') {
      for (i = 0; i < S.outbox.length; i++) {
        item = S.outbox[i];
        if (item.state !== 'queued' || item.notBefore > t0) { continue; }
        try {
          S.ws.send(JSON.stringify({ type: 'message', text: item.text, client_id: item.cid }));
          item.state = 'inflight';
        } catch (e) {
          break;  // the socket is closing; onclose requeues
        }
      }
    } else if (S.transport === 'poll' && !S.posting) {
      for (i = 0; i < S.outbox.length; i++) {
        item = S.outbox[i];
        if (item.state === 'queued' && item.notBefore <= t0) { postItem(item); break; }
      }
    }
    updatePendingLabels();
  }

  function postItem(item) {
    S.posting = item;
    item.state = 'inflight';
    request('POST', cfg.pollPath, { text: item.text, client_id: item.cid }, function (status, data, xhr) {
      S.posting = null;
      if (status === 201 && data) {
        acked(item.cid, data.id);
      } else if (status === 429 || status === 503 || status === 0 || status >= 500) {
        var after = status === 429 ? parseInt(xhr.getResponseHeader('Retry-After') || '1', 10) * 1000 : STORE_RETRY_MS;
        item.state = 'queued';
        retryLater(item, after);
      } else if (fatalStatus(status)) {
        item.state = 'queued';
        return;
      } else {
        item.state = 'failed';
        item.error = (data && data.detail) || String(status);
      }
      flushOutbox();
    }, 30000);
  }

  function retryLater(item, ms) {
    item.notBefore = now() + ms;
    setTimeout(flushOutbox, ms + 10);
  }

  function acked(cid, id) {
    var item = findItem(cid);
    if (!item) { return; }
    item.state = 'acked';
    item.id = id;
    saveOutbox();
    settleOutbox();
    updatePendingLabels();
  }

  function sendFailed(cid, code, detail, retryAfter) {
    var item = findItem(cid);
    if (!item) { return; }
    if (code === 'rate_limited') {
      item.state = 'queued';
      retryLater(item, (retryAfter || 1) * 1000);
    } else if (code === 'store_error' || code === 'unavailable') {
      item.state = 'queued';
      retryLater(item, STORE_RETRY_MS);
    } else {
      item.state = 'failed';
      item.error = detail || code;
    }
    updatePendingLabels();
  }

  // An acknowledged item disappears once its event is in the timeline (or the
  // stream has moved past it, e.g. after a reset to a shorter tail).
  function settleOutbox() {
    for (var i = S.outbox.length - 1; i >= 0; i--) {
      var item = S.outbox[i];
      if (item.state === 'acked' && (S.ids[item.id] || (S.cursor !== null && item.id <= S.cursor))) {
        removeItem(item);
      }
    }
  }

  function requeueInflight() {
    for (var i = 0; i < S.outbox.length; i++) {
      if (S.outbox[i].state === 'inflight') { S.outbox[i].state = 'queued'; }
    }
    updatePendingLabels();
  }

  // ---------------------------------------------------------------- older messages

  function loadOlder(ev) {
    if (!S.events.length) { return; }
    if (ev && ev.preventDefault) { ev.preventDefault(); }
    if (el.older.getAttribute('aria-busy') === 'true') { return; }
    var before = S.events[0].id;
    var epoch = S.epoch;
    el.older.setAttribute('aria-busy', 'true');
    el.older.textContent = t('loading');
    request('GET', cfg.pollPath + '?before=' + before + '&limit=' + PAGE_SIZE, null, function (status, data) {
      el.older.removeAttribute('aria-busy');
      el.older.textContent = t('older');
      if (status !== 200 || !data) { showError(t('load_failed')); return; }
      if (data.epoch !== epoch || !S.events.length || S.events[0].id !== before) { return; }  // reset meanwhile
      var older = [];
      var events = data.events || [];
      for (var i = 0; i < events.length; i++) {
        if (!S.ids[events[i].id] && events[i].id < before) { older.push(events[i]); S.ids[events[i].id] = true; }
      }
      var fromBottom = el.scroller.scrollHeight - el.scroller.scrollTop;
      S.events = older.concat(S.events);
      renderAll(null);
      el.scroller.scrollTop = el.scroller.scrollHeight - fromBottom;  // keep the reader's place
      updateOlderLink(!!data.has_more);
    }, 15000);
  }

  // ---------------------------------------------------------------- composer

  var composerErrorTimer = null;
  function showError(text) {
    if (!el.error) { return; }
    el.error.textContent = text;
    show(el.error);
    if (composerErrorTimer) { clearTimeout(composerErrorTimer); }
    composerErrorTimer = setTimeout(function () { hide(el.error); }, 6000);
  }

  function autosize() {
    el.text.style.height = 'auto';
    el.text.style.height = Math.min(el.text.scrollHeight + 2, 160) + 'px';
  }

  function submit() {
    var text = el.text.value.replace(/^\s+|\s+$/g, '');
    if (!text) { el.text.value = ''; autosize(); return; }
    queueMessage(text);
    el.text.value = '';
    autosize();
    hide(el.error);
  }

  function sendTyping() {
    if (S.transport !== 'ws' || !S.ws || S.state !== 'live') { return; }
    var t0 = now();
    if (t0 - S.lastTypingSent < TYPING_SEND_INTERVAL_MS) { return; }
    S.lastTypingSent = t0;
    try { S.ws.send('{"type":"typing"}'); } catch (e) { /* closing */ }
  }

  // ---------------------------------------------------------------- start

  // Adopt the server-rendered events, then render them our way (local times, groups, links).
  var items = el.list.getElementsByTagName('li');
  var i;
  for (i = 0; i < items.length; i++) {
    if (items[i].getAttribute('data-id')) { S.events.push(eventFromLi(items[i])); }
  }
  for (i = 0; i < S.events.length; i++) { S.ids[S.events[i].id] = true; }
  renderAll(null);
  var userItems = el.users.getElementsByTagName('li');
  var initialUsers = [];
  for (i = 0; i < userItems.length; i++) { initialUsers.push(userItems[i].getAttribute('data-name')); }
  renderUsers(initialUsers);
  el.older.addEventListener('click', loadOlder, false);
  scrollToBottom();

  el.scroller.addEventListener('scroll', function () {
    if (S.newBelow > 0 && atBottom()) { S.newBelow = 0; updatePill(); }
  }, false);
  el.pill.addEventListener('click', function () { scrollToBottom(); el.text.focus(); }, false);

  document.addEventListener('visibilitychange', function () {
    if (!pageHidden()) {
      S.unread = 0;
      setTitle();
      if (S.state === 'reconnecting' && S.timer) { connect(); }  // back on the tab: try now
    }
  }, false);
  window.addEventListener('online', function () {
    if (S.state === 'reconnecting' && S.timer) { connect(); }
  }, false);
  el.retry.addEventListener('click', function () { connect(); }, false);

  // Live sending needs a cursor; on an older page (?before=N) and after a fatal
  // error the plain form post does the work, as without JavaScript.
  function live() { return S.cursor !== null && !S.stopped; }

  el.form.addEventListener('submit', function (ev) {
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

  if (S.cursor === null) {
    setState('history');
    return;
  }
  restoreOutbox();
  scrollToBottom();
  connect();
}());
