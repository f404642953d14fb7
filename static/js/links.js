/* Obrolan client: which parts of a message are links, and which are code.  Pure: no DOM, no network.
 * ES5; see docs/client.md.
 *
 * The rule is the server's: Tornado's linkify(text, require_protocol=True,
 * permitted_protocols=["http", "https"]), which templates/event.html uses.  Its regular
 * expression runs on the HTML-escaped text with Unicode \w and \s; here the same expression
 * runs on the plain text (an escaped "&" or '"' may be inside a URL, "<", ">" and "'" may not)
 * with Python's \w from wordchars.js and Python's \s spelt out.  tests/browser/cases/links.json
 * and a randomised comparison with Tornado hold the two to one rule.
 *
 *   split('see https://example.com/a?b=1, ok') ->
 *     [{text: 'see '}, {url: 'https://example.com/a?b=1'}, {text: ', ok'}]
 */
(function (O) {
  'use strict';

  // Python's \s for str patterns (str.isspace()).
  var SPACE = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
  var URL_CHAR = '[^' + SPACE + '()<>\']';
  var URL_END = '[^!"#$%&\'()*+,.:;<=>?@\\[\\]^`{|}~' + SPACE + ']';
  // What follows "scheme:/" or "www.": runs of URL characters ending in a character that is not
  // punctuation, or "(...)" groups.
  var BODY_RE = new RegExp('^(?:' + URL_CHAR + '*' + URL_END + '|\\(' + URL_CHAR + '*\\))+');
  var PERMITTED = { http: true, https: true };

  var wordRanges = null;  // [lo0, hi0, lo1, hi1, ...], decoded from wordchars.js on first use

  function decodeRanges() {
    var out = [];
    var list = O.wordChars ? O.wordChars.ranges.split(' ') : [];
    var last = 0;
    for (var i = 0; i < list.length; i++) {
      var parts = list[i].split('.');
      var lo = last + parseInt(parts[0], 36);
      last = lo + (parts.length > 1 ? parseInt(parts[1], 36) : 0);
      out.push(lo, last);
    }
    return out;
  }

  // Python's \w: [A-Za-z0-9_] and every code point str.isalnum() accepts.
  function isWord(cp) {
    if (cp < 0) { return false; }
    if (cp < 128) {
      return (cp >= 48 && cp <= 57) || (cp >= 65 && cp <= 90) || (cp >= 97 && cp <= 122) || cp === 95;
    }
    if (wordRanges === null) { wordRanges = decodeRanges(); }
    var lo = 0;
    var hi = wordRanges.length / 2 - 1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (cp < wordRanges[2 * mid]) { hi = mid - 1; } else if (cp > wordRanges[2 * mid + 1]) { lo = mid + 1; } else { return true; }
    }
    return false;
  }

  // The code point at `i` (a surrogate pair counts once); -1 past the end.
  function codePointAt(s, i) {
    if (i < 0 || i >= s.length) { return -1; }
    var c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      var d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { return (c - 0xd800) * 0x400 + (d - 0xdc00) + 0x10000; }
    }
    return c;
  }

  // The code point that ends just before `i`; -1 at the start.
  function codePointBefore(s, i) {
    if (i <= 0) { return -1; }
    var d = s.charCodeAt(i - 1);
    if (d >= 0xdc00 && d <= 0xdfff && i >= 2) {
      var c = s.charCodeAt(i - 2);
      if (c >= 0xd800 && c <= 0xdbff) { return (c - 0xd800) * 0x400 + (d - 0xdc00) + 0x10000; }
    }
    return d;
  }

  function width(cp) { return cp >= 0x10000 ? 2 : 1; }

  // Where a URL body starting at `at` ends, or -1.
  function bodyEnd(text, at) {
    var m = BODY_RE.exec(text.slice(at));
    return m ? at + m[0].length : -1;
  }

  // The URL-like match starting at `i`, as Python's re would find it there:
  // \b((?:([\w-]+):(/{1,3})|www[.]) body).  {end, scheme} or null.
  function matchAt(text, i) {
    var j = i;
    var cp;
    while ((cp = codePointAt(text, j)) >= 0 && (cp === 45 || isWord(cp))) { j += width(cp); }
    if (j > i && text.charAt(j) === ':') {
      var slashes = 0;
      while (slashes < 3 && text.charAt(j + 1 + slashes) === '/') { slashes += 1; }
      for (var n = slashes; n >= 1; n--) {  // /{1,3} is greedy, then gives back
        var end = bodyEnd(text, j + 1 + n);
        if (end >= 0) { return { end: end, scheme: text.slice(i, j) }; }
      }
    }
    if (text.substr(i, 4) === 'www.') {
      var wwwEnd = bodyEnd(text, i + 4);
      if (wwwEnd >= 0) { return { end: wwwEnd, scheme: null }; }
    }
    return null;
  }

  // The text as parts, in order: {text: '...'} and {url: '...'} (the link's text and href).
  function split(text) {
    text = String(text);
    var parts = [];
    var plainFrom = 0;
    var i = 0;
    while (i < text.length) {
      var cp = codePointAt(text, i);
      var here = cp === 45 || isWord(cp);
      // \b before the match: a word character on exactly one side.
      if (here && isWord(codePointBefore(text, i)) !== isWord(cp)) {
        var m = matchAt(text, i);
        if (m) {
          if (m.scheme !== null && PERMITTED.hasOwnProperty(m.scheme)) {
            if (i > plainFrom) { parts.push({ text: text.slice(plainFrom, i) }); }
            parts.push({ url: text.slice(i, m.end) });
            plainFrom = m.end;
          }
          i = m.end;  // a match that is not linked stays text, and is not searched again
          continue;
        }
      }
      i += width(cp);
    }
    if (plainFrom < text.length) { parts.push({ text: text.slice(plainFrom) }); }
    return parts;
  }

  // Code in a message, by the rule of handlers/richtext.py (docs/client.md, "Code in messages";
  // tests/browser/cases/code.json holds both to it): left to right, ```block``` first, else
  // `inline` on one line; a block drops one line break after its opening and before its closing
  // backticks; code that is empty or only spaces, tabs and line breaks stays text.
  //   codeParts('a `b` c') -> [{text: 'a '}, {code: 'b'}, {text: ' c'}]   (also {block: '...'})
  var CODE_RE = /```([\s\S]+?)```|`([^`\n]+)`/g;
  var BLANK_RE = /^[ \t\n]*$/;

  function codeParts(text) {
    text = String(text);
    var parts = [];
    function addText(chunk) {
      if (!chunk) { return; }
      var last = parts[parts.length - 1];
      if (last && last.text !== undefined) { last.text += chunk; } else { parts.push({ text: chunk }); }
    }
    var at = 0;
    var m;
    CODE_RE.lastIndex = 0;
    while ((m = CODE_RE.exec(text)) !== null) {
      addText(text.slice(at, m.index));
      at = m.index + m[0].length;
      var block = m[1];
      var content;
      if (block !== undefined) {
        if (block.charAt(0) === '\n') { block = block.slice(1); }
        if (block.charAt(block.length - 1) === '\n') { block = block.slice(0, -1); }
        content = block;
      } else {
        content = m[2];
      }
      if (BLANK_RE.test(content)) { addText(m[0]); } else if (block !== undefined) { parts.push({ block: content }); } else { parts.push({ code: content }); }
    }
    addText(text.slice(at));
    return parts;
  }

  O.links = { split: split, isWord: isWord, codeParts: codeParts };
}(window.Obrolan = window.Obrolan || {}));
