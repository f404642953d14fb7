/* Obrolan client: the outbox, messages not yet acknowledged.  Pure: no DOM, no network.
 * ES5; see docs/client.md.
 *
 * Every message gets a client_id and waits here until the server acknowledges it; a resend
 * reuses the client_id, so the server stores it once.  What is not acknowledged is also kept
 * in the tab's storage (sessionStorage, handed in) so a reload sends it again.
 *
 * An item: {cid, text, state, id, error, notBefore}; state is 'queued' (waits to be sent),
 * 'inflight' (sent, no answer yet), 'acked' (stored as event `id`) or 'failed' (`error` says why).
 */
(function (O) {
  'use strict';

  var STORE_RETRY_MS = 2000;  // after store_error / unavailable / a 5xx

  function storageKey(room, me) { return 'obrolan-outbox:' + room + ':' + me; }

  var idCounter = 0;

  // A fresh client_id: time, a counter and randomness ("c<time>-<n>-<random>").
  function newClientId(nowMs) {
    var rand = '';
    var cryptoObj = window.crypto || window.msCrypto;
    if (cryptoObj && cryptoObj.getRandomValues) {
      var buf = new Uint32Array(3);
      cryptoObj.getRandomValues(buf);
      for (var i = 0; i < buf.length; i++) { rand += buf[i].toString(36); }
    } else {
      rand = Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
    }
    idCounter += 1;
    return 'c' + (nowMs === undefined ? new Date().getTime() : nowMs).toString(36) + '-' + idCounter + '-' + rand;
  }

  // options: {storage: a Storage or null, key: storageKey(room, me), now: () -> ms, newId: () -> cid}
  function Outbox(options) {
    options = options || {};
    this.items = [];
    this.storage = options.storage || null;
    this.key = options.key || 'obrolan-outbox';
    this.now = options.now || function () { return new Date().getTime(); };
    this.newId = options.newId || newClientId;
  }

  function makeItem(cid, text) {
    return { cid: cid, text: text, state: 'queued', id: null, error: null, notBefore: 0 };
  }

  Outbox.prototype.get = function (cid) {
    for (var i = 0; i < this.items.length; i++) {
      if (this.items[i].cid === cid) { return this.items[i]; }
    }
    return null;
  };

  // A new message, queued and stored.
  Outbox.prototype.queue = function (text) {
    var item = makeItem(this.newId(this.now()), text);
    this.items.push(item);
    this.save();
    return item;
  };

  // The unacknowledged items go to storage; an unusable storage (missing, refused, full) is
  // ignored: the page still has them.
  Outbox.prototype.save = function () {
    if (!this.storage) { return; }
    var keep = [];
    for (var i = 0; i < this.items.length; i++) {
      if (this.items[i].state !== 'acked') { keep.push({ cid: this.items[i].cid, text: this.items[i].text }); }
    }
    try {
      if (keep.length) { this.storage.setItem(this.key, JSON.stringify(keep)); } else { this.storage.removeItem(this.key); }
    } catch (e) { /* quota or refused */ }
  };

  // What an earlier page of this tab left unsent, back in as queued (same client_id).
  // Returns the items added.
  Outbox.prototype.restore = function () {
    var saved = null;
    var added = [];
    if (!this.storage) { return added; }
    try { saved = JSON.parse(this.storage.getItem(this.key) || 'null'); } catch (e) { saved = null; }
    if (!saved || typeof saved.length !== 'number') { return added; }
    for (var i = 0; i < saved.length; i++) {
      var entry = saved[i];
      if (!entry || typeof entry.cid !== 'string' || typeof entry.text !== 'string' || this.get(entry.cid)) { continue; }
      var item = makeItem(entry.cid, entry.text);
      this.items.push(item);
      added.push(item);
    }
    return added;
  };

  Outbox.prototype.remove = function (item) {
    for (var i = 0; i < this.items.length; i++) {
      if (this.items[i] === item) { this.items.splice(i, 1); break; }
    }
    this.save();
  };

  // Queued items whose retry time has come, in order.
  Outbox.prototype.due = function () {
    var t0 = this.now();
    var out = [];
    for (var i = 0; i < this.items.length; i++) {
      if (this.items[i].state === 'queued' && this.items[i].notBefore <= t0) { out.push(this.items[i]); }
    }
    return out;
  };

  Outbox.prototype.sent = function (item) { item.state = 'inflight'; };

  // Queued again, to be sent no earlier than `ms` from now.
  Outbox.prototype.later = function (item, ms) {
    item.state = 'queued';
    item.notBefore = this.now() + ms;
  };

  // "Retry" on a failed item.
  Outbox.prototype.retry = function (item) {
    item.state = 'queued';
    item.error = null;
  };

  // The server stored it as event `id`.  Returns the item, or null for an unknown client_id.
  Outbox.prototype.ack = function (cid, id) {
    var item = this.get(cid);
    if (!item) { return null; }
    item.state = 'acked';
    item.id = id;
    this.save();
    return item;
  };

  // A refused send (WebSocket error frame: code, detail, retry_after in seconds).
  // Returns {item, retryInMs} (retryInMs null when it failed for good), or null.
  Outbox.prototype.refused = function (cid, code, detail, retryAfterS) {
    var item = this.get(cid);
    if (!item) { return null; }
    if (code === 'rate_limited') {
      this.later(item, (retryAfterS || 1) * 1000);
      return { item: item, retryInMs: (retryAfterS || 1) * 1000 };
    }
    if (code === 'store_error' || code === 'unavailable' || code === 'outcome_unknown') {
      this.later(item, STORE_RETRY_MS);
      return { item: item, retryInMs: STORE_RETRY_MS };
    }
    item.state = 'failed';
    item.code = code;
    item.error = detail || code;
    return { item: item, retryInMs: null };
  };

  // The answer to a POST of `item` (long-poll mode): HTTP status, JSON body, Retry-After header.
  // Returns the milliseconds until a retry, or null.  401, 409 and 410 are not this item's fault
  // (session expired, name taken, left the room): it waits, queued, and the page stops.
  Outbox.prototype.posted = function (item, status, data, retryAfter) {
    if (status === 201 && data) {
      this.ack(item.cid, data.id);
      return null;
    }
    if (status === 429 || status === 503 || status === 0 || status >= 500) {
      var ms = status === 429 ? (parseInt(retryAfter || '1', 10) || 1) * 1000 : STORE_RETRY_MS;
      this.later(item, ms);
      return ms;
    }
    if (status === 401 || status === 409 || status === 410) {
      item.state = 'queued';
      return null;
    }
    item.state = 'failed';
    item.code = (data && data.error) || null;
    item.error = (data && data.detail) || String(status);
    return null;
  };

  // The connection carrying inflight items is gone: they go out again (same client_id).
  Outbox.prototype.requeueInflight = function () {
    for (var i = 0; i < this.items.length; i++) {
      if (this.items[i].state === 'inflight') { this.items[i].state = 'queued'; }
    }
  };

  // Acknowledged items whose event is on screen (`seen(id)`), or which the stream has passed,
  // leave the outbox.  Returns them.
  Outbox.prototype.settle = function (seen) {
    var gone = [];
    for (var i = this.items.length - 1; i >= 0; i--) {
      var item = this.items[i];
      if (item.state === 'acked' && seen(item.id)) { gone.unshift(item); this.items.splice(i, 1); }
    }
    if (gone.length) { this.save(); }
    return gone;
  };

  O.outbox = { storageKey: storageKey, newClientId: newClientId, STORE_RETRY_MS: STORE_RETRY_MS };
  O.Outbox = Outbox;
}(window.Obrolan = window.Obrolan || {}));
