/* Obrolan client: event timestamps.  Pure: no DOM, no network.  ES5; see docs/client.md.
 *
 * The server writes ISO 8601 in UTC with milliseconds ("2024-05-01T09:30:00.123Z").  Old
 * browsers' Date cannot parse that, so it is parsed here, exactly: to the microsecond, with
 * "Z" or a "+hh:mm" offset.  Anything else is not a timestamp (null).
 */
(function (O) {
  'use strict';

  var ISO_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;

  // {ms: whole milliseconds since the epoch, us: the microseconds beyond them (0..999)} or null.
  function parse(ts) {
    var m = typeof ts === 'string' ? ISO_RE.exec(ts) : null;
    if (!m) { return null; }
    var year = +m[1], month = +m[2], day = +m[3], hour = +m[4], minute = +m[5], second = +m[6];
    if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 ||
        second > 59) { return null; }
    var frac = (m[7] || '') + '000000';
    var micros = +frac.slice(0, 6);
    var offset = 0;
    if (!m[8]) {
      if (+m[10] > 23 || +m[11] > 59) { return null; }
      offset = (m[9] === '-' ? -1 : 1) * (+m[10] * 60 + +m[11]) * 60000;
    }
    var ms = Date.UTC(year, month - 1, day, hour, minute, second) - offset + Math.floor(micros / 1000);
    return { ms: ms, us: micros % 1000 };
  }

  function daysIn(year, month) {
    if (month === 2) { return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28; }
    return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  }

  // Microseconds from `a` to `b` (parsed), exact for gaps under a few centuries.
  function gapUs(a, b) {
    return (b.ms - a.ms) * 1000 + (b.us - a.us);
  }

  // A Date for display, or null.
  function toDate(ts) {
    var p = parse(ts);
    return p ? new Date(p.ms) : null;
  }

  // "HH:MM UTC" straight from the timestamp, as the server-rendered page shows it.
  function utcLabel(ts) {
    return String(ts).slice(11, 16) + ' UTC';
  }

  O.time = { parse: parse, gapUs: gapUs, toDate: toDate, utcLabel: utcLabel };
}(window.Obrolan = window.Obrolan || {}));
