/* Obrolan client: who is in the room, on screen (#users, #user-count).  ES5; see docs/client.md.
 *
 * The page lists the users it was rendered with; then the stream's full list (after its replay)
 * replaces it, and each join or leave event changes it (users.js).  Long-poll answers carry no
 * list, so the page asks /users at the start and after every join or leave.
 *
 *   var users = new Obrolan.UserList({doc, me, t, list: #users, count: #user-count, url: data-users-url,
 *     shown(names)   after the list changed on screen
 *   });
 */
(function (O) {
  'use strict';

  var USERS_TIMEOUT_MS = 10000;

  var dom = O.dom;

  function UserList(options) {
    this.options = options;
    this.names = null;  // the list shown (null until the page or the server gave one)
  }

  UserList.prototype.show = function (names) {
    var o = this.options;
    this.names = names;
    dom.clear(o.list);
    for (var i = 0; i < names.length; i++) { o.list.appendChild(O.render.user(o.doc, names[i], o.me, o.t('you'))); }
    o.count.textContent = String(names.length);
    o.shown(names);
  };

  // The names the server rendered into the page.
  UserList.prototype.adopt = function () {
    var items = this.options.list.getElementsByTagName('li');
    var names = [];
    for (var i = 0; i < items.length; i++) { names.push(items[i].getAttribute('data-name')); }
    this.show(names);
  };

  // A join or leave event (taken into the timeline): after the full list, it is the change.
  UserList.prototype.apply = function (e) {
    if (this.names !== null) { this.show(O.users.apply(this.names, e)); }
  };

  UserList.prototype.refresh = function () {
    var self = this;
    O.transport.request('GET', this.options.url, null, function (status, data) {
      if (status === 200 && data && data.users) { self.show(data.users); }
    }, USERS_TIMEOUT_MS);
  };

  O.UserList = UserList;
}(window.Obrolan = window.Obrolan || {}));
