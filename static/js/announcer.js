/* Obrolan client: the live region that screen readers read out (#announcer, aria-live="polite",
 * aria-relevant="additions"): others' messages, joins and leaves, connection changes.
 * ES5; see docs/client.md.
 */
(function (O) {
  'use strict';

  var ANNOUNCE_KEEP = 5;  // live-region entries kept

  function Announcer(doc, region) {
    this.doc = doc;
    this.region = region;
  }

  // Each announcement is a new paragraph (an addition is what the region reads out); the oldest
  // go, so the region does not grow with the conversation.
  Announcer.prototype.say = function (text) {
    this.region.appendChild(O.dom.make(this.doc, 'p', null, text));
    while (this.region.childNodes.length > ANNOUNCE_KEEP) { this.region.removeChild(this.region.firstChild); }
  };

  O.Announcer = Announcer;
}(window.Obrolan = window.Obrolan || {}));
