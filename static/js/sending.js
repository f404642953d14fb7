/* Obrolan client: sending through the outbox, and its bubbles under the timeline (#outbox).
 * ES5; see docs/client.md ("Sending: the outbox").
 *
 * outbox.js keeps the items and their states; this puts each on screen as a dashed bubble
 * ("Waiting for the connection…", "Sending…", "Sent", or "Not sent" with Retry and Remove) and
 * sends what is due: all at once over a WebSocket, one POST at a time otherwise.  A bubble goes
 * once its message is acknowledged and in the timeline.
 *
 *   var sending = new Obrolan.Sending({doc, lang, me, box: #outbox, outbox, timeline, cursor, t,
 *     postUrl: data-poll-url,
 *     transport()            the Transport, or null before connecting
 *     connected()            whether a transport works now (the labels say "Sending…")
 *     errorText(code, detail)  an error code in words for a person
 *     toBottom()             show the reader their new bubble
 *     focusText()            after Remove
 *     fatal(key)             a POST answered that retrying cannot help ('expired', …)
 *   });
 */
(function (O) {
  'use strict';

  var POST_TIMEOUT_MS = 30000;
  var RETRY_SLACK_MS = 10;  // flush a little after the retry time, so the item is due by then

  var dom = O.dom;
  var render = O.render;

  function Sending(options) {
    this.options = options;
    this.doc = options.doc;
    this.outbox = options.outbox;
    this.t = options.t;
    this.bubbles = {};    // client_id -> its <li> in #outbox
    this.shown = {};      // client_id -> what its state line says now (see label)
    this.posting = null;  // the outbox item a POST is carrying (not over a WebSocket)
  }

  // ------------------------------------------------------------------ bubbles

  Sending.prototype.bubble = function (item) {
    var li = render.decorate(render.pending(this.doc, this.options.me, item.text, item.cid), this.options.lang);
    this.bubbles[item.cid] = li;
    this.options.box.appendChild(li);
    this.label(item);
  };

  Sending.prototype.dropBubble = function (item) {
    var li = this.bubbles[item.cid];
    delete this.bubbles[item.cid];
    delete this.shown[item.cid];
    if (li && li.parentNode) { li.parentNode.removeChild(li); }
  };

  function stateLine(li) {
    var divs = li.getElementsByTagName('div');
    for (var i = 0; i < divs.length; i++) {
      if (dom.hasClass(divs[i], 'pending-state')) { return divs[i]; }
    }
    return null;
  }

  // The bubble's state line: what the item waits for, or why it failed and what can be done.
  // Made again only when what it says changes: a failed bubble's buttons stay the same elements,
  // so the keyboard focus on "Retry" survives every relabelling (an ack, a reconnect).
  Sending.prototype.label = function (item) {
    var self = this;
    var t = this.t;
    var doc = this.doc;
    var li = this.bubbles[item.cid];
    if (!li) { return; }
    var failed = item.state === 'failed';
    var text = failed ? t('failed', { detail: this.options.errorText(item.code, item.error) })
      : item.state === 'acked' ? t('sent') : this.options.connected() ? t('sending') : t('waiting');
    var shown = (failed ? 'failed:' : 'state:') + text;
    if (this.shown[item.cid] === shown) { return; }
    this.shown[item.cid] = shown;
    var line = stateLine(li);
    dom.clear(line);
    dom.removeClass(li, 'failed');
    if (failed) {
      dom.addClass(li, 'failed');
      line.appendChild(doc.createTextNode(text));
      var retry = dom.make(doc, 'button', 'secondary', t('retry'));
      retry.type = 'button';
      retry.onclick = function () { self.outbox.retry(item); self.flush(); };
      var remove = dom.make(doc, 'button', 'secondary', t('remove'));
      remove.type = 'button';
      remove.onclick = function () { self.outbox.remove(item); self.dropBubble(item); self.options.focusText(); };
      line.appendChild(retry);
      line.appendChild(remove);
      return;
    }
    line.appendChild(doc.createTextNode(text));
  };

  Sending.prototype.updateLabels = function () {
    for (var i = 0; i < this.outbox.items.length; i++) { this.label(this.outbox.items[i]); }
  };

  // What an earlier page of this tab left unsent, back on screen as waiting.
  Sending.prototype.restore = function () {
    var restored = this.outbox.restore();
    for (var i = 0; i < restored.length; i++) { this.bubble(restored[i]); }
  };

  // ------------------------------------------------------------------ sending

  Sending.prototype.queue = function (text) {
    this.bubble(this.outbox.queue(text));
    this.options.toBottom();
    this.flush();
  };

  // Send what waits, in order: all at once over a WebSocket, one POST at a time otherwise
  // (an event stream or long-poll only reads).
  Sending.prototype.flush = function () {
    var outbox = this.outbox;
    var transport = this.options.transport();
    var due = outbox.due();
    if (transport && transport.streaming()) {
      for (var i = 0; i < due.length; i++) {
        if (!transport.send({ type: 'message', text: due[i].text, client_id: due[i].cid })) { break; }
        outbox.sent(due[i]);
      }
    } else if (transport && transport.posts() && !this.posting && due.length) {
      this.post(due[0]);
    }
    this.updateLabels();
  };

  Sending.prototype.post = function (item) {
    var self = this;
    var outbox = this.outbox;
    this.posting = item;
    outbox.sent(item);
    O.transport.request('POST', this.options.postUrl, { text: item.text, client_id: item.cid },
      function (status, data, xhr) {
        self.posting = null;
        var key = O.transport.fatalStatus(status);
        var retryIn = outbox.posted(item, status, data, xhr.getResponseHeader('Retry-After'));
        if (key) { self.options.fatal(key); return; }
        if (item.state === 'acked') { self.settle(); }
        if (retryIn !== null) { self.flushLater(retryIn); }
        self.flush();
      }, POST_TIMEOUT_MS);
  };

  Sending.prototype.flushLater = function (ms) {
    var self = this;
    setTimeout(function () { self.flush(); }, ms + RETRY_SLACK_MS);
  };

  // The WebSocket's ack.
  Sending.prototype.acked = function (cid, id) {
    if (!this.outbox.ack(cid, id)) { return; }
    this.settle();
    this.updateLabels();
  };

  // The WebSocket's error for one message.
  Sending.prototype.refused = function (cid, code, detail, retryAfter) {
    var r = this.outbox.refused(cid, code, detail, retryAfter);
    if (r && r.retryInMs !== null) { this.flushLater(r.retryInMs); }
    this.updateLabels();
  };

  // The connection dropped: what it was carrying goes out again.
  Sending.prototype.requeue = function () {
    this.outbox.requeueInflight();
    this.updateLabels();
  };

  // An acknowledged item disappears once its event is in the timeline (or the
  // stream has moved past it, e.g. after a reset to a shorter tail).
  Sending.prototype.settle = function () {
    var timeline = this.options.timeline;
    var cursor = this.options.cursor;
    var gone = this.outbox.settle(function (id) { return timeline.has(id) || cursor.passed(id); });
    for (var i = 0; i < gone.length; i++) { this.dropBubble(gone[i]); }
  };

  O.Sending = Sending;
}(window.Obrolan = window.Obrolan || {}));
