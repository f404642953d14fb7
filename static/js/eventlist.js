/* Obrolan client: the timeline on screen (#messages) and "Older messages" (#older).
 * ES5; see docs/client.md ("Rendering").
 *
 * timeline.js keeps the events; this renders them with render.js, decorated (local times, avatar
 * colours) and with a day separator where a local day starts.  "Older messages" is a plain link
 * (?before=N) that is loaded in place, keeping the reader's place.
 *
 *   var list = new Obrolan.EventList({doc, lang, me, t, list: #messages, empty: #empty (may be
 *     absent), older: #older, scroller, timeline, cursor, pollUrl: data-poll-url, joinUrl: data-join-url,
 *     showError(text)   the older page did not load
 *   });
 */
(function (O) {
  'use strict';

  var PAGE_SIZE = 50;
  var OLDER_TIMEOUT_MS = 15000;

  var dom = O.dom;
  var render = O.render;

  function EventList(options) {
    var self = this;
    this.options = options;
    this.doc = options.doc;
    this.list = options.list;
    this.older = options.older;
    this.timeline = options.timeline;
    this.older.addEventListener('click', function (ev) { self.loadOlder(ev); }, false);
  }

  EventList.prototype.rendered = function (e, prev) {
    var o = this.options;
    return render.decorate(render.event(this.doc, e, { me: o.me, cont: O.timeline.continues(prev, e), t: o.t }), o.lang);
  };

  EventList.prototype.appendRendered = function (parent, e, prev) {
    var d = O.time.toDate(e.ts);
    var pd = prev ? O.time.toDate(prev.ts) : null;
    if (d && (!pd || render.dayKey(d) !== render.dayKey(pd))) { parent.appendChild(render.day(this.doc, d, this.options.lang)); }
    parent.appendChild(this.rendered(e, prev));
  };

  // The whole list again, after an optional notice (why it starts over).
  EventList.prototype.renderAll = function (notice) {
    var timeline = this.timeline;
    dom.clear(this.list);
    var fragment = this.doc.createDocumentFragment();
    if (notice) { fragment.appendChild(render.system(this.doc, notice)); }
    for (var i = 0; i < timeline.size(); i++) { this.appendRendered(fragment, timeline.events[i], timeline.before(i)); }
    this.list.appendChild(fragment);
    if (timeline.size() && this.options.empty) { dom.hide(this.options.empty); }
  };

  // Take over the server-rendered events: read back, they render the same (render.readEvent),
  // then decorated and with day separators.
  EventList.prototype.adopt = function () {
    var items = this.list.getElementsByTagName('li');
    var found = [];
    var i;
    for (i = 0; i < items.length; i++) {
      if (items[i].getAttribute('data-id')) { found.push(render.readEvent(items[i])); }
    }
    for (i = 0; i < found.length; i++) { this.timeline.add(found[i]); }
    this.renderAll(null);
  };

  // Event e went into the timeline at `index`.
  EventList.prototype.added = function (e, index) {
    var timeline = this.timeline;
    if (index === timeline.size() - 1) {
      var fragment = this.doc.createDocumentFragment();
      this.appendRendered(fragment, e, timeline.before(index));
      this.list.appendChild(fragment);
    } else {
      this.renderAll(null);  // out of order (not expected from one stream): render the list again
    }
    if (this.options.empty) { dom.hide(this.options.empty); }
  };

  // For good (left, expired, name taken): why, and a way back in.
  EventList.prototype.ended = function (message) {
    var doc = this.doc;
    var li = render.system(doc, message + ' ');
    var a = dom.make(doc, 'a', null, this.options.t('join_again'));
    a.href = this.options.joinUrl;
    li.appendChild(a);
    this.list.appendChild(li);
  };

  // ------------------------------------------------------------------ older messages

  EventList.prototype.olderLink = function (hasMore) {
    var oldest = this.timeline.first();
    if (hasMore && oldest && oldest.id > 1) {
      this.older.href = window.location.pathname + '?before=' + oldest.id;
      dom.show(this.older);
    } else {
      dom.hide(this.older);
    }
  };

  EventList.prototype.hideOlder = function () {
    dom.hide(this.older);
  };

  EventList.prototype.loadOlder = function (ev) {
    var self = this;
    var o = this.options;
    var t = o.t;
    var older = this.older;
    var scroller = o.scroller;
    var timeline = this.timeline;
    if (!timeline.size()) { return; }
    if (ev && ev.preventDefault) { ev.preventDefault(); }
    if (older.getAttribute('aria-busy') === 'true') { return; }
    var before = timeline.first().id;
    var epoch = o.cursor.epoch;
    older.setAttribute('aria-busy', 'true');
    older.textContent = t('loading');
    var url = o.pollUrl + '?before=' + before + '&limit=' + PAGE_SIZE;
    O.transport.request('GET', url, null, function (status, data) {
      older.removeAttribute('aria-busy');
      older.textContent = t('older');
      if (status !== 200 || !data) { o.showError(t('load_failed')); return; }
      if (data.epoch !== epoch || !timeline.size() || timeline.first().id !== before) { return; }  // reset meanwhile
      var fromBottom = scroller.scrollHeight - scroller.scrollTop;
      timeline.addOlder(data.events);
      self.renderAll(null);
      scroller.scrollTop = scroller.scrollHeight - fromBottom;  // keep the reader's place
      self.olderLink(!!data.has_more);
    }, OLDER_TIMEOUT_MS);
  };

  O.EventList = EventList;
}(window.Obrolan = window.Obrolan || {}));
