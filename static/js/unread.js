/* Obrolan client: what arrived that the reader has not seen.  ES5; see docs/client.md.
 *
 * While the reader is at the bottom of the timeline, new events keep them there.  Scrolled up, a
 * pill "↓ N new messages" counts the messages below (scrolling down or pressing it clears it).
 * While the tab is hidden, the title counts others' messages: "(N) room · Obrolan".
 *
 *   var unread = new Obrolan.Unread({doc, scroller, pill, t,
 *     pillPressed()   after the pill took the reader down
 *     seen()          the tab is visible again (after the title is cleared)
 *   });
 */
(function (O) {
  'use strict';

  var FOLLOW_SLACK_PX = 80;  // "at the bottom" if closer than this

  var dom = O.dom;

  function Unread(options) {
    var self = this;
    this.doc = options.doc;
    this.scroller = options.scroller;
    this.pill = options.pill;
    this.t = options.t;
    this.newBelow = 0;               // messages below the view: the pill's count
    this.hiddenCount = 0;            // others' messages while the tab was hidden: the title's count
    this.baseTitle = this.doc.title;

    this.scroller.addEventListener('scroll', function () {
      if (self.newBelow > 0 && self.atBottom()) { self.newBelow = 0; self.updatePill(); }
    }, false);
    this.pill.addEventListener('click', function () { self.toBottom(); options.pillPressed(); }, false);
    this.doc.addEventListener('visibilitychange', function () {
      if (!self.pageHidden()) {
        self.hiddenCount = 0;
        self.setTitle();
        options.seen();
      }
    }, false);
  }

  Unread.prototype.atBottom = function () {
    var s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= FOLLOW_SLACK_PX;
  };

  Unread.prototype.toBottom = function () {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.newBelow = 0;
    dom.hide(this.pill);
  };

  // A message arrived below the view (the reader is scrolled up).
  Unread.prototype.addBelow = function () {
    this.newBelow += 1;
    this.updatePill();
  };

  // Someone else's message: counted in the title if nobody is looking at the tab.
  Unread.prototype.addIfHidden = function () {
    if (this.pageHidden()) { this.hiddenCount += 1; this.setTitle(); }
  };

  Unread.prototype.updatePill = function () {
    if (this.newBelow > 0) {
      this.pill.textContent = '\u2193 ' + this.t(this.newBelow === 1 ? 'new_one' : 'new_other', { n: this.newBelow });
      dom.show(this.pill);
    } else {
      dom.hide(this.pill);
    }
  };

  Unread.prototype.setTitle = function () {
    this.doc.title = (this.hiddenCount > 0 ? '(' + this.hiddenCount + ') ' : '') + this.baseTitle;
  };

  Unread.prototype.pageHidden = function () {
    return this.doc.hidden === true || this.doc.visibilityState === 'hidden';
  };

  O.Unread = Unread;
}(window.Obrolan = window.Obrolan || {}));
