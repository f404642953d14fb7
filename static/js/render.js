/* Obrolan client: the DOM for one event (and the few other timeline items).  ES5; see docs/client.md.
 *
 * Obrolan.render.event builds exactly the markup templates/event.html gives the same event
 * (tests/browser/test_event_markup.py compares the two), so a server-rendered event and a live
 * one are the same.  decorate() then does what only the browser can, to both alike: times in
 * the reader's time zone and language, a colour per name on the avatars.
 * User data only ever reaches the DOM as text.
 */
(function (O) {
  'use strict';

  var dom = O.dom;

  // The avatar letter: the name's first character (a whole code point), upper-cased.
  function initial(name) {
    var s = String(name);
    var c = s.charCodeAt(0);
    var n = c >= 0xd800 && c <= 0xdbff && s.length > 1 ? 2 : 1;
    return s.slice(0, n).toUpperCase();
  }

  function avatar(doc, name) {
    var el = dom.make(doc, 'span', 'avatar', initial(name));
    el.setAttribute('aria-hidden', 'true');
    return el;
  }

  // Text with http(s) URLs as links (the rule is in links.js); everything else stays text.
  function linkedText(doc, parent, text) {
    var parts = O.links.split(text);
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].url === undefined) {
        parent.appendChild(doc.createTextNode(parts[i].text));
      } else {
        var a = dom.make(doc, 'a', null, parts[i].url);
        a.setAttribute('href', parts[i].url);
        a.setAttribute('rel', 'noopener noreferrer nofollow');
        a.setAttribute('target', '_blank');
        parent.appendChild(a);
      }
    }
  }

  // A message's text: `code` and ```blocks``` (links.js codeParts), links in the rest.  A block
  // is focusable so that one wider than the bubble can be scrolled by keyboard.
  function richText(doc, parent, text) {
    var parts = O.links.codeParts(text);
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].code !== undefined) {
        parent.appendChild(dom.make(doc, 'code', null, parts[i].code));
      } else if (parts[i].block !== undefined) {
        var pre = dom.make(doc, 'pre');
        pre.setAttribute('tabindex', '0');
        pre.appendChild(dom.make(doc, 'code', null, parts[i].block));
        parent.appendChild(pre);
      } else {
        linkedText(doc, parent, parts[i].text);
      }
    }
  }

  // The text a message element shows, as it was written: code gets its backticks back (a block
  // with a line break inside each fence, which the rule drops again).
  function writtenText(el) {
    var out = '';
    for (var node = el.firstChild; node; node = node.nextSibling) {
      var name = node.nodeName.toLowerCase();
      if (name === 'code') { out += '`' + dom.text(node) + '`'; }
      else if (name === 'pre') { out += '```\n' + dom.text(node) + '\n```'; }
      else if (node.nodeType === 3) { out += node.data; }
      else { out += dom.text(node); }
    }
    return out;
  }

  function timeEl(doc, ts) {
    var time = dom.make(doc, 'time', null, O.time.utcLabel(ts));
    time.setAttribute('datetime', ts);
    return time;
  }

  // avatar, meta (name, then the time when there is one) and the text, into `li`.
  function messageBody(doc, li, user, text, ts) {
    li.appendChild(avatar(doc, user));
    var meta = dom.make(doc, 'div', 'meta');
    meta.appendChild(dom.make(doc, 'span', 'user', user));
    meta.appendChild(doc.createTextNode(' '));
    if (ts) { meta.appendChild(timeEl(doc, ts)); }
    li.appendChild(meta);
    var box = dom.make(doc, 'div', 'text');  // a div: a code block (<pre>) may be inside
    richText(doc, box, text);
    li.appendChild(box);
  }

  // One event as an <li>, as templates/event.html renders it.
  // options: {me: the reader's name, cont: whether it continues the previous message
  // (Obrolan.timeline.continues), t: the translator (Obrolan.i18n)}.
  function event(doc, e, options) {
    var li;
    if (e.type === 'message') {
      li = dom.make(doc, 'li', 'event message' + (e.user === options.me ? ' mine' : '') + (options.cont ? ' cont' : ''));
    } else {
      li = dom.make(doc, 'li', 'event notice ' + e.type);
    }
    li.setAttribute('data-id', String(e.id));
    li.setAttribute('data-type', e.type);
    li.setAttribute('data-user', e.user);
    li.setAttribute('data-ts', e.ts);
    if (e.type === 'message') {
      messageBody(doc, li, e.user, e.text || '', e.ts);
    } else {
      li.appendChild(dom.make(doc, 'span', 'notice-text', options.t(e.type === 'join' ? 'joined' : 'left', { name: e.user })));
      li.appendChild(doc.createTextNode(' '));
      li.appendChild(timeEl(doc, e.ts));
    }
    return li;
  }

  // The event an <li> shows (server-rendered or not), read back from it.
  function readEvent(li) {
    var textEl = null;
    var divs = li.getElementsByTagName('div');
    for (var i = 0; i < divs.length; i++) {
      if (dom.hasClass(divs[i], 'text')) { textEl = divs[i]; break; }
    }
    return {
      id: parseInt(li.getAttribute('data-id'), 10),
      type: li.getAttribute('data-type'),
      user: li.getAttribute('data-user'),
      ts: li.getAttribute('data-ts'),
      text: textEl ? writtenText(textEl) : null
    };
  }

  // Eight well-separated hues; a name always gets the same one.
  var AVATAR_HUES = [172, 214, 262, 330, 22, 140, 45, 0];
  function hue(name) {
    var h = 5381;
    for (var i = 0; i < name.length; i++) { h = (h * 33 + name.charCodeAt(i)) % 2147483647; }
    return AVATAR_HUES[h % AVATAR_HUES.length];
  }

  function paint(avatarEl, name) {
    if (avatarEl.style && avatarEl.style.setProperty) { avatarEl.style.setProperty('--hue', String(hue(name))); }
  }

  function pad2(n) { return n < 10 ? '0' + n : String(n); }

  function localTime(d, lang) {
    try {
      return d.toLocaleTimeString(lang, { hour: 'numeric', minute: '2-digit' });
    } catch (e) {
      return pad2(d.getHours()) + ':' + pad2(d.getMinutes());
    }
  }

  function localDay(d, lang) {
    try {
      return d.toLocaleDateString(lang, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
    } catch (e) {
      return d.toDateString();
    }
  }

  function dayKey(d) { return d.getFullYear() + '-' + d.getMonth() + '-' + d.getDate(); }

  // The browser's touches on a rendered event (or outbox bubble): local times, avatar colours.
  function decorate(li, lang) {
    var times = li.getElementsByTagName('time');
    for (var i = 0; i < times.length; i++) {
      var d = O.time.toDate(times[i].getAttribute('datetime'));
      if (d) {
        times[i].textContent = localTime(d, lang);
        times[i].title = d.toLocaleString ? d.toLocaleString() : String(d);
      }
    }
    var user = li.getAttribute('data-user');
    var spans = li.getElementsByTagName('span');
    for (var j = 0; j < spans.length && user !== null; j++) {
      if (dom.hasClass(spans[j], 'avatar')) { paint(spans[j], user); }
    }
    return li;
  }

  // The separator before the first event of a local day: an item of the list like the events (a list
  // may hold only items; the day is worth hearing, so it is not hidden from screen readers either).
  function day(doc, d, lang) {
    return dom.make(doc, 'li', 'day', localDay(d, lang));
  }

  // A notice from the page itself ("Some earlier messages are no longer available…").
  function system(doc, text) {
    var li = dom.make(doc, 'li', 'event system', text);
    li.setAttribute('role', 'note');
    return li;
  }

  // An outbox bubble: the message as it will look, and a line for its state.
  function pending(doc, me, text, cid) {
    var li = dom.make(doc, 'li', 'event message mine pending');
    li.setAttribute('data-client-id', cid);
    li.setAttribute('data-user', me);
    messageBody(doc, li, me, text, null);
    li.appendChild(dom.make(doc, 'div', 'pending-state'));
    return li;
  }

  // A person in the user list.
  function user(doc, name, me, you) {
    var li = dom.make(doc, 'li', name === me ? 'me' : null);
    li.setAttribute('data-name', name);
    var av = avatar(doc, name);
    paint(av, name);
    li.appendChild(av);
    li.appendChild(dom.make(doc, 'span', 'name', name));
    if (name === me) {
      li.appendChild(doc.createTextNode(' '));
      li.appendChild(dom.make(doc, 'span', 'you', '(' + you + ')'));
    }
    return li;
  }

  O.render = {
    event: event, readEvent: readEvent, decorate: decorate, richText: richText, initial: initial, hue: hue,
    day: day, dayKey: dayKey, system: system, pending: pending, user: user
  };
}(window.Obrolan = window.Obrolan || {}));
