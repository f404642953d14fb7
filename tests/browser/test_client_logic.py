"""The client's pure logic in headless Chromium, with no server: a blank page, the files under test
loaded from static/js (``client_page``), ``page.evaluate``.

Only the pure files are loaded (no dom.js, render.js or app.js), which also shows they need
neither the DOM nor the network.  The grouping and link cases are the files the server side is
tested with too (tests/browser/cases/, see test_event_markup.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.browser.harness import TEST_TIMEOUT_S, chromium, client_page

pytestmark = pytest.mark.browser

CASES = Path(__file__).resolve().parent / "cases"
GROUPING = json.loads((CASES / "grouping.json").read_text(encoding="utf-8"))
LINKS = json.loads((CASES / "links.json").read_text(encoding="utf-8"))
CODE = json.loads((CASES / "code.json").read_text(encoding="utf-8"))


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_grouping_follows_the_shared_cases():
    async with chromium() as browser:
        client = await client_page(browser, "time.js", "timeline.js")
        window_s, got = await client.run("""cases => [
            Obrolan.timeline.GROUP_WINDOW_S,
            cases.map(c => Obrolan.timeline.continues(c.prev, c.event))]""", GROUPING["cases"])
    assert window_s == GROUPING["window_s"]
    for case, result in zip(GROUPING["cases"], got, strict=True):
        assert result is case["continues"], case["why"]


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_links_follow_the_shared_cases_and_keep_every_character():
    async with chromium() as browser:
        client = await client_page(browser, "wordchars.js", "links.js")
        got = await client.run("cases => cases.map(c => Obrolan.links.split(c.text))", LINKS["cases"])
    for case, parts in zip(LINKS["cases"], got, strict=True):
        assert [p["url"] for p in parts if "url" in p] == case["links"], case["why"]
        assert "".join(p.get("url", p.get("text")) for p in parts) == case["text"], case["why"]
        assert all(p.get("url", p.get("text")) for p in parts), case["why"]  # no empty part


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_timeline_keeps_each_event_once_in_id_order():
    async with chromium() as browser:
        client = await client_page(browser, "time.js", "timeline.js")
        got = await client.run("""() => {
            const tl = new Obrolan.Timeline(), ids = () => tl.events.map(e => e.id), out = {};
            out.added = [tl.add({id: 3}), tl.add({id: 5}), tl.add({id: 4}), tl.add({id: 5}), tl.add({id: '7'}),
                         tl.add(null)];
            out.ids = ids();
            out.has = [tl.has(4), tl.has(6), tl.has('hasOwnProperty')];
            out.ends = [tl.first().id, tl.last().id, tl.before(0), tl.before(2).id];
            out.older = tl.addOlder([{id: 2}, {id: 3}, {id: 9}, {id: 1}, {id: 2}]);
            out.afterOlder = ids();
            tl.clear();
            out.cleared = [tl.size(), tl.first(), tl.last(), tl.has(3), tl.addOlder([{id: 8}, {id: 7}])];
            out.refilled = ids();
            return out;
        }""")
    assert got["added"] == [0, 1, 1, -1, -1, -1]  # index, or -1: a repeat, no numeric id, nothing
    assert got["ids"] == [3, 4, 5]
    assert got["has"] == [True, False, False]
    assert got["ends"] == [3, 5, None, 4]
    assert got["older"] == 2  # 1 and 2: 3 is there, 9 is not older, the second 2 is a repeat
    assert got["afterOlder"] == [1, 2, 3, 4, 5]
    assert got["cleared"] == [0, None, None, False, 2]
    assert got["refilled"] == [7, 8]


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_cursor_drops_what_it_has_and_resumes_or_starts_over():
    async with chromium() as browser:
        client = await client_page(browser, "cursor.js")
        got = await client.run("""() => {
            const out = {};
            const older = Obrolan.Cursor.fromAttributes('e1', '');
            out.older = [older.live(), older.query(), older.query('wait=0')];
            const c = Obrolan.Cursor.fromAttributes('e1', '10');
            out.take = [c.take({id: 10}), c.take({id: 9}), c.take({id: 11}), c.take({id: 11}), c.take({id: '12'}),
                        c.take(null), c.id];
            out.query = [c.query(), c.query('wait=25'), new Obrolan.Cursor('a b&c/d', 1).query()];
            c.advance(9); out.advance = [c.id];
            c.advance(20); c.advance(undefined); out.advance.push(c.id);
            out.passed = [c.passed(20), c.passed(21), c.passed(3)];
            out.same = [c.answer('e1', false), c.id, c.epoch];
            out.truncated = [c.answer('e1', true), c.id, c.take({id: 1}), c.epoch];
            out.restarted = [c.answer('e2', true), c.id, c.epoch];
            out.unknown = new Obrolan.Cursor(null, 5).answer('e9', true);
            c.refused(); out.refused = [c.id, c.live(), c.query()];
            out.fresh = [c.take({id: 30}), c.id, c.live()];
            return out;
        }""")
    assert got["older"] == [False, "?epoch=e1", "?epoch=e1&wait=0"]  # an older page: no cursor
    assert got["take"] == [False, False, True, False, False, False, 11]
    assert got["query"] == ["?after=11&epoch=e1", "?after=11&epoch=e1&wait=25", "?after=1&epoch=a%20b%26c%2Fd"]
    assert got["advance"] == [11, 20]
    assert got["passed"] == [True, False, True]
    assert got["same"] == [None, 20, "e1"]
    assert got["truncated"] == [{"restarted": False}, 0, True, "e1"]  # the tail is all new
    assert got["restarted"] == [{"restarted": True}, 0, "e2"]  # another epoch: the history started over
    assert got["unknown"] == {"restarted": False}
    assert got["refused"] == [None, False, "?epoch=e2"]
    assert got["fresh"] == [True, 30, True]


OUTBOX_SETUP = """
window.store = {
  data: {}, failing: false,
  getItem(k) { if (this.failing) throw new Error('refused'); return k in this.data ? this.data[k] : null; },
  setItem(k, v) { if (this.failing) throw new Error('quota'); this.data[k] = String(v); },
  removeItem(k) { if (this.failing) throw new Error('refused'); delete this.data[k]; },
};
window.clock = 1000;
window.KEY = Obrolan.outbox.storageKey('lobby', 'Ani');
window.saved = () => JSON.parse(store.getItem(KEY));
window.outbox = (ids) => new Obrolan.Outbox({storage: store, key: KEY, now: () => clock, newId: () => ids.shift()});
"""


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_outbox_keeps_what_is_unacknowledged_and_retries_as_told():
    async with chromium() as browser:
        client = await client_page(browser, "outbox.js")
        await client.run(f"() => {{ {OUTBOX_SETUP} }}")
        got = await client.run("""() => {
            const out = {}, box = outbox(['c1', 'c2']), cids = items => items.map(i => i.cid);
            const a = box.queue('halo'), b = box.queue('apa kabar?');
            out.key = KEY;
            out.saved = saved();
            out.due = [cids(box.due())];
            box.sent(a); box.sent(b);
            out.due.push(cids(box.due()));
            box.requeueInflight();  // the connection dropped: both go again, same client_id
            out.due.push(cids(box.due()));
            box.sent(a); box.sent(b);
            out.ack = [box.ack('c1', 41) === a, a.state, a.id, box.ack('nope', 1)];
            out.savedAfterAck = saved();
            out.settle = [cids(box.settle(id => false)), cids(box.settle(id => id === 41)), cids(box.items)];

            out.rateLimited = box.refused('c2', 'rate_limited', 'slow down', 3).retryInMs;
            out.waiting = [b.state, cids(box.due())];
            clock += 3000;
            out.waiting.push(cids(box.due()));
            box.sent(b);
            out.storeError = box.refused('c2', 'store_error', null).retryInMs;
            clock += 2000;
            box.sent(b);
            out.failed = [box.refused('c2', 'invalid_text', 'text must be at most 2000 characters').retryInMs,
                          b.state, b.error, cids(box.due()), saved()];
            box.retry(b);
            out.retried = [b.state, b.error, cids(box.due())];
            box.remove(b);
            out.removed = [box.items.length, store.getItem(KEY)];
            return out;
        }""")
    assert got["key"] == "obrolan-outbox:lobby:Ani"
    assert got["saved"] == [{"cid": "c1", "text": "halo"}, {"cid": "c2", "text": "apa kabar?"}]
    assert got["due"] == [["c1", "c2"], [], ["c1", "c2"]]
    assert got["ack"] == [True, "acked", 41, None]
    assert got["savedAfterAck"] == [{"cid": "c2", "text": "apa kabar?"}]
    assert got["settle"] == [[], ["c1"], ["c2"]]  # gone once its event is on screen
    assert got["rateLimited"] == 3000
    assert got["waiting"] == ["queued", [], ["c2"]]
    assert got["storeError"] == 2000
    assert got["failed"] == [None, "failed", "text must be at most 2000 characters", [],
                             [{"cid": "c2", "text": "apa kabar?"}]]  # kept until removed
    assert got["retried"] == ["queued", None, ["c2"]]
    assert got["removed"] == [0, None]


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_outbox_answers_to_a_post_and_comes_back_after_a_reload():
    async with chromium() as browser:
        client = await client_page(browser, "outbox.js")
        await client.run(f"() => {{ {OUTBOX_SETUP} }}")
        got = await client.run("""() => {
            const out = {}, box = outbox(['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']);
            const items = [1, 2, 3, 4, 5, 6, 7].map(n => box.queue('pesan ' + n));
            out.posted = [
              box.posted(items[0], 201, {id: 7}), box.posted(items[1], 429, {error: 'rate_limited'}, '4'),
              box.posted(items[2], 503, null, null), box.posted(items[3], 0, null, null),
              box.posted(items[4], 401, {error: 'unauthorized'}, null),
              box.posted(items[5], 400, {error: 'invalid_text', detail: 'too long'}, null),
              box.posted(items[6], 410, {error: 'left'}, null)];
            out.states = items.map(i => [i.state, i.notBefore - clock, i.error]);
            out.badRetryAfter = box.posted(items[1], 429, null, 'soon');

            // A reload: a new page's outbox gets the unacknowledged back, same client_id, once;
            // what is not an entry is skipped.
            store.setItem(KEY, JSON.stringify([{cid: 'r1', text: 'x'}, {cid: 5, text: 'no'}, null, 'junk',
                                               {cid: 'r1', text: 'again'}, {cid: 'r2', text: 'y'}]));
            const next = outbox([]);
            out.restored = next.restore().map(i => [i.cid, i.text, i.state]);
            out.restoredAgain = next.restore().length;
            store.setItem(KEY, '{not json');
            out.junk = outbox([]).restore().length;

            // Storage refusing everything: the outbox still works, in the page only.
            store.failing = true;
            const offline = outbox(['s1']);
            out.failing = [offline.queue('tetap').cid, offline.restore().length, offline.ack('s1', 9).state];
            const none = new Obrolan.Outbox({storage: null, key: KEY, now: () => clock, newId: () => 'n1'});
            out.noStorage = [none.queue('ok').cid, none.restore().length, none.due().length];

            const fresh = [Obrolan.outbox.newClientId(), Obrolan.outbox.newClientId()];
            out.ids = [fresh[0] !== fresh[1], fresh.every(id => /^c[0-9a-z]+-[0-9]+-[0-9a-z]+$/.test(id))];
            return out;
        }""")
    assert got["posted"] == [None, 4000, 2000, 2000, None, None, None]  # ms until the retry
    assert got["states"] == [["acked", -1000, None], ["queued", 4000, None], ["queued", 2000, None],
                             ["queued", 2000, None], ["queued", -1000, None], ["failed", -1000, "too long"],
                             ["queued", -1000, None]]  # 410 left: not the message's fault, kept for a new join
    assert got["badRetryAfter"] == 1000  # an unreadable Retry-After: one second
    assert got["restored"] == [["r1", "x", "queued"], ["r2", "y", "queued"]]
    assert got["restoredAgain"] == 0
    assert got["junk"] == 0
    assert got["failing"] == ["s1", 0, "acked"]
    assert got["noStorage"] == ["n1", 0, 1]
    assert got["ids"] == [True, True]


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_timestamps_strings_and_backoff():
    async with chromium() as browser:
        client = await client_page(browser, "i18n.js", "time.js", "transport.js")
        got = await client.run("""() => {
            const T = Obrolan.time, f = Obrolan.i18n.format;
            const t = Obrolan.i18n.translator({joined: '%(name)s bergabung', new_other: '%(n)d pesan baru'});
            return {
              parsed: ['2024-05-01T09:30:00.123Z', '2024-05-01T16:30:00.123+07:00', '2024-05-01T09:30:00.123456Z',
                       '1999-12-31T23:59:59Z'].map(T.parse),
              invalid: ['2024-05-01T09:30:00', '2024-13-01T00:00:00Z', '2023-02-29T00:00:00Z', '2024-05-01T24:00:00Z',
                        '2024-05-01 09:30:00Z', '', null, 5, '2024-05-01T09:30:00.1234567Z'].map(T.parse),
              label: T.utcLabel('2024-05-01T09:30:00.123Z'),
              date: T.toDate('2024-05-01T09:30:00.123Z').getTime(),
              strings: [t('joined', {name: 'Ani'}), t('new_other', {n: 3}), t('missing'), t('joined'),
                        f('%(a)s and %(b)s', {a: '%(b)s', b: 'X'}), f('%(who)s: 100%', {who: 'Ani'})],
              backoff: [Obrolan.transport.backoff(0, 0), Obrolan.transport.backoff(0, 0.999),
                        Obrolan.transport.backoff(3, 0.5), Obrolan.transport.backoff(10, 0),
                        Obrolan.transport.backoff(40, 1)],
              fatal: [401, 409, 400, 500, 0, 410].map(Obrolan.transport.fatalStatus),
              closes: [1000, 4409, 1001, 1006, 1013].map(Obrolan.transport.fatalClose),
            };
        }""")
    ms = int(datetime(2024, 5, 1, 9, 30, tzinfo=UTC).timestamp() * 1000) + 123
    assert got["parsed"][:3] == [{"ms": ms, "us": 0}, {"ms": ms, "us": 0}, {"ms": ms, "us": 456}]
    assert got["parsed"][3] == {"ms": int(datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp() * 1000), "us": 0}
    assert got["invalid"] == [None] * 9
    assert got["label"] == "09:30 UTC"
    assert got["date"] == ms
    assert got["strings"] == ["Ani bergabung", "3 pesan baru", "missing", "%(name)s bergabung", "%(b)s and X",
                              "Ani: 100%"]
    assert got["backoff"][0] == 250 and 499 < got["backoff"][1] < 500
    assert got["backoff"][2:] == [3000, 15000, 30000]  # [d/2, d], d = 0.5 s doubling, at most 30 s
    assert got["fatal"] == ["expired", "name_taken", None, None, None, "left_room"]
    assert got["closes"] == ["left_room", "name_taken", None, None, None]


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_the_transport_ladder_starts_at_the_best_the_browser_has_and_skips_what_it_lacks():
    async with chromium() as browser:
        client = await client_page(browser, "cursor.js", "transport.js")
        got = await client.run("""() => {
            const make = (ws, es) => new Obrolan.Transport(
              {wsPath: '/ws', eventsPath: '/events', pollPath: '/messages', webSocket: ws, eventSource: es},
              new Obrolan.Cursor('e', 5), {});
            const all = make(true, true), noEs = make(true, false), noWs = make(false, true), none = make(false, false);
            return {
              best: [all, noEs, noWs, none].map(t => t.best),
              below: [all.below('ws'), all.below('sse'), noEs.below('ws'), noWs.below('sse')],
            };
        }""")
    assert got["best"] == ["ws", "ws", "sse", "poll"]
    assert got["below"] == ["sse", "poll", "poll", "poll"]  # without EventSource, WebSocket's next is long-poll


# The parts a person sees in a rendered message's text element: text, url, code, block; and each
# block's tabindex.  Then the event read back from the element (as app.js reads a server-rendered
# one) must render to the same element.
CODE_PARTS_JS = """cases => cases.map(c => {
  const e = {id: 1, type: 'message', user: 'Budi', ts: '2024-05-01T09:30:10.000Z', text: c.text};
  const t = Obrolan.i18n.translator({});
  const li = Obrolan.render.event(document, e, {me: 'Ani', cont: false, t: t});
  const box = li.querySelector('.text');
  const parts = [];
  for (const node of box.childNodes) {
    const name = node.nodeName.toLowerCase();
    const kind = {'#text': 'text', a: 'url', code: 'code', pre: 'block'}[name];
    if (kind === 'block' && (node.children.length !== 1 || node.firstChild.nodeName !== 'CODE')) {
      return 'a <pre> without its one <code>';
    }
    parts.push([kind || name, node.textContent]);
  }
  const again = Obrolan.render.event(document, Obrolan.render.readEvent(li), {me: 'Ani', cont: false, t: t});
  return {parts: parts, box: box.tagName.toLowerCase(),
          tabindex: [...box.querySelectorAll('pre')].map(p => p.getAttribute('tabindex')),
          roundTrip: again.outerHTML === li.outerHTML};
})"""


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_code_follows_the_shared_cases_in_the_client():
    async with chromium() as browser:
        client = await client_page(browser, "wordchars.js", "i18n.js", "time.js", "links.js", "timeline.js",
                                   "dom.js", "render.js")
        got = await client.run(CODE_PARTS_JS, CODE["cases"])
    for case, result in zip(CODE["cases"], got, strict=True):
        assert isinstance(result, dict), (result, case["why"])
        assert result["parts"] == case["parts"], case["why"]
        assert result["box"] == "div", case["why"]  # a <pre> cannot be inside a <p>
        assert result["tabindex"] == ["0"] * sum(kind == "block" for kind, _ in case["parts"]), case["why"]
        assert result["roundTrip"], case["why"]
