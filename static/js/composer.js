/* Obrolan client: the composer, the message box under the timeline (#composer).
 * ES5; see docs/client.md.
 *
 * Enter sends and Shift+Enter starts a new line (an IME at work is left alone); the box grows
 * with its text; an error shows above it for a while.  While the page is live a message goes to
 * submitted(text) instead of the form post; otherwise (an older page, after a fatal error) the
 * form posts as it does without JavaScript.
 *
 *   var composer = new Obrolan.Composer({form, text, send, error: #composer-error (may be absent), t,
 *     live()            whether messages go out live
 *     submitted(text)   a message, trimmed, not empty
 *     typed()           a keystroke left text in the box
 *   });
 */
(function (O) {
  'use strict';

  var ERROR_SHOW_MS = 6000;
  var TEXT_MAX_HEIGHT_PX = 160;  // the box grows up to this, then scrolls
  var TEXT_BORDER_PX = 2;        // its top and bottom borders, which scrollHeight leaves out
  var IME_KEY_CODE = 229;        // a keydown that an IME (composing text) is handling

  var dom = O.dom;

  function Composer(options) {
    var self = this;
    var text = options.text;
    this.options = options;
    this.form = options.form;
    this.text = text;
    this.t = options.t;
    this.left = false;         // the session left the room: nothing is sent
    this.errorTimer = null;

    this.form.addEventListener('submit', function (ev) {
      if (self.left) { ev.preventDefault(); return; }
      if (!options.live()) { return; }
      ev.preventDefault();
      self.submit();
      text.focus();
    }, false);
    text.addEventListener('keydown', function (ev) {
      var enter = ev.key === 'Enter' || ev.keyCode === 13;
      if (!enter || ev.shiftKey || ev.isComposing || ev.keyCode === IME_KEY_CODE) { return; }
      ev.preventDefault();
      if (options.live()) { self.submit(); } else if (text.value.replace(/\s+/g, '')) { self.form.submit(); }
    }, false);
    text.addEventListener('input', function () {
      self.autosize();
      if (text.value.replace(/\s+/g, '')) { options.typed(); }
    }, false);
  }

  // An error code in words for a person (the page's error_<code> strings, handlers/messages.py);
  // the server's detail (written for developers) only for a code the page has no words for.
  Composer.prototype.errorText = function (code, detail) {
    var key = 'error_' + code;
    var text = code ? this.t(key) : key;
    return text !== key ? text : (detail || code || '');
  };

  Composer.prototype.showError = function (text) {
    var error = this.options.error;
    if (!error) { return; }
    error.textContent = text;
    dom.show(error);
    if (this.errorTimer) { clearTimeout(this.errorTimer); }
    this.errorTimer = setTimeout(function () { dom.hide(error); }, ERROR_SHOW_MS);
  };

  Composer.prototype.autosize = function () {
    var text = this.text;
    text.style.height = 'auto';
    text.style.height = Math.min(text.scrollHeight + TEXT_BORDER_PX, TEXT_MAX_HEIGHT_PX) + 'px';
  };

  Composer.prototype.submit = function () {
    var text = this.text.value.replace(/^\s+|\s+$/g, '');
    if (!text) { this.text.value = ''; this.autosize(); return; }
    this.options.submitted(text);
    this.text.value = '';
    this.autosize();
    dom.hide(this.options.error);
  };

  Composer.prototype.focus = function () {
    this.text.focus();
  };

  // The session left the room (maybe in another tab): a form post now would join it again
  // silently, so nothing is sent until the person chooses "Join again" (what was typed stays).
  Composer.prototype.close = function () {
    this.left = true;
    this.text.disabled = true;
    this.options.send.disabled = true;
  };

  O.Composer = Composer;
}(window.Obrolan = window.Obrolan || {}));
