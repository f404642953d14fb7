/* Obrolan client: translated UI text.  Pure: no DOM, no network.  ES5; see docs/client.md.
 *
 * The room page hands over its strings (already in the reader's language) as JSON in
 * #chat[data-i18n]; placeholders are Python's: %(name)s, %(n)d.
 */
(function (O) {
  'use strict';

  // `template` with %(key)s / %(key)d filled from `params`; unknown placeholders stay as they are.
  function format(template, params) {
    return String(template).replace(/%\((\w+)\)[sd]/g, function (match, name) {
      return params && params.hasOwnProperty(name) ? String(params[name]) : match;
    });
  }

  // t(key, params): the string for `key` (the key itself when missing), formatted.
  function translator(strings) {
    strings = strings || {};
    return function (key, params) {
      return format(strings.hasOwnProperty(key) ? strings[key] : key, params);
    };
  }

  O.i18n = { format: format, translator: translator };
}(window.Obrolan = window.Obrolan || {}));
