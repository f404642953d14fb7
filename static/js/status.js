/* Obrolan client: the connection badge (#status) and its "Try now" button (#retry).
 * ES5; see docs/client.md ("Badge states").
 *
 *   var status = new Obrolan.Status({badge, retry, t,
 *     announce(text)   a change of state, for the live region
 *     changed()        when the state changed: what depends on it (the outbox's labels)
 *     retryPressed()   "Try now"
 *   });
 *   status.set(state, secondsLeft);   the transport's states, plus 'history' and 'offline'
 */
(function (O) {
  'use strict';

  var dom = O.dom;

  function Status(options) {
    this.badge = options.badge;
    this.retry = options.retry;
    this.t = options.t;
    this.announce = options.announce;
    this.changed = options.changed;
    this.state = 'connecting';  // what the badge shows
    this.retry.addEventListener('click', function () { options.retryPressed(); }, false);
  }

  Status.prototype.set = function (state, secondsLeft) {
    var t = this.t;
    var changed = state !== this.state;
    this.state = state;
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
    // An older page (?before=N) looks like the page without JavaScript: static.
    this.badge.setAttribute('data-state', state === 'history' ? 'static' : state);
    this.badge.textContent = label;
    // Changes are announced (not the countdown's ticks, which keep the state), except to 'connecting'.
    if (changed && state !== 'connecting') { this.announce(label); }
    if (state === 'reconnecting' && secondsLeft > 0) { dom.show(this.retry); } else { dom.hide(this.retry); }
    if (changed) { this.changed(); }  // not each tick of the countdown
  };

  // Whether messages can go out now (any working transport).
  Status.prototype.connected = function () {
    return this.state === 'live' || this.state === 'compat' || this.state === 'fallback';
  };

  O.Status = Status;
}(window.Obrolan = window.Obrolan || {}));
