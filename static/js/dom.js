/* Obrolan client: small DOM helpers for old browsers (no classList).  ES5; see docs/client.md.
 * User data only ever reaches the DOM as text (text nodes, textContent), never as HTML.
 */
(function (O) {
  'use strict';

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

  // <tag class="className">text</tag> in `doc`.
  function make(doc, tag, className, text) {
    var el = doc.createElement(tag);
    if (className) { el.className = className; }
    if (text !== undefined && text !== null) { el.appendChild(doc.createTextNode(String(text))); }
    return el;
  }

  function text(el) {
    return el.textContent !== undefined ? el.textContent : el.innerText;
  }

  O.dom = { hasClass: hasClass, addClass: addClass, removeClass: removeClass, show: show, hide: hide,
            clear: clear, make: make, text: text };
}(window.Obrolan = window.Obrolan || {}));
