/* Obrolan client: the timeline, the events on screen.  Pure: no DOM, no network.
 * ES5; see docs/client.md.
 *
 * Events are kept in ascending id order, each id once.  `continues` is the grouping rule
 * ("this message goes under the previous one's header"); handlers/pages.py has the same
 * rule for the server-rendered page, and tests/browser/cases/grouping.json holds both to it.
 */
(function (O) {
  'use strict';

  var GROUP_WINDOW_S = 300;

  // Whether `e` continues `prev`: both messages, the same name (exactly), `e` no earlier than
  // `prev` and at most GROUP_WINDOW_S seconds after it.  A timestamp that does not parse never groups.
  function continues(prev, e) {
    if (!prev || !e || prev.type !== 'message' || e.type !== 'message' || prev.user !== e.user) { return false; }
    var a = O.time.parse(prev.ts);
    var b = O.time.parse(e.ts);
    if (!a || !b) { return false; }
    var gap = O.time.gapUs(a, b);
    return gap >= 0 && gap <= GROUP_WINDOW_S * 1000000;
  }

  function Timeline() {
    this.events = [];  // ascending id
    this.ids = {};     // id -> true
  }

  Timeline.prototype.size = function () { return this.events.length; };
  Timeline.prototype.has = function (id) { return this.ids.hasOwnProperty(id); };
  Timeline.prototype.first = function () { return this.events.length ? this.events[0] : null; };
  Timeline.prototype.last = function () { return this.events.length ? this.events[this.events.length - 1] : null; };
  Timeline.prototype.before = function (index) { return index > 0 ? this.events[index - 1] : null; };

  // Adds one event in its place by id.  Returns its index, or -1 when it is there already
  // (or has no numeric id).
  Timeline.prototype.add = function (e) {
    if (!e || typeof e.id !== 'number' || this.has(e.id)) { return -1; }
    var i = this.events.length;
    while (i > 0 && this.events[i - 1].id > e.id) { i -= 1; }
    this.events.splice(i, 0, e);
    this.ids[e.id] = true;
    return i;
  };

  // Adds a page of older events: those older than the first one here and not yet here.
  // Returns how many were added.
  Timeline.prototype.addOlder = function (events) {
    var first = this.first();
    var older = [];
    for (var i = 0; i < (events || []).length; i++) {
      var e = events[i];
      if (e && typeof e.id === 'number' && !this.has(e.id) && (!first || e.id < first.id)) {
        older.push(e);
        this.ids[e.id] = true;
      }
    }
    older.sort(function (a, b) { return a.id - b.id; });
    this.events = older.concat(this.events);
    return older.length;
  };

  Timeline.prototype.clear = function () {
    this.events = [];
    this.ids = {};
  };

  O.timeline = { GROUP_WINDOW_S: GROUP_WINDOW_S, continues: continues };
  O.Timeline = Timeline;
}(window.Obrolan = window.Obrolan || {}));
