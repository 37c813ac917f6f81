// The staff scanner that works without signal (issue 15).
// Online, it fetches the event's kit (the town's public keys, the revocation list, the
// event) and keeps it in IndexedDB. Each scan (camera or typed) is checked here: a signed
// card or voucher (S1.…) by its Ed25519 signature with WebCrypto and against the
// revocation list; a typed short code is kept and checked by the server when it syncs.
// Accepted scans are queued in IndexedDB with a nonce and the time they were made, and
// sent when the phone is online (automatically, or by the button); the server applies each
// nonce once, so sending the same queue twice, from two tabs, credits once.
(function () {
  "use strict";
  var root = document.getElementById("offline-scanner");
  if (!root || !window.indexedDB) return;
  var T = document.getElementById("texts").dataset;
  var eventId = Number(root.dataset.event);
  var form = document.getElementById("offline-form");
  var input = document.getElementById("offline-code");
  var result = document.getElementById("scan-result");
  var kit = null;
  var syncing = false;

  // -- IndexedDB ---------------------------------------------------------------------
  var opened = new Promise(function (resolve, reject) {
    var request = indexedDB.open("torreya-offline", 1);
    request.onupgradeneeded = function () {
      var db = request.result;
      db.createObjectStore("kits", { keyPath: "event" });
      db.createObjectStore("scans", { keyPath: "nonce" }).createIndex("event", "event");
    };
    request.onsuccess = function () { resolve(request.result); };
    request.onerror = function () { reject(request.error); };
  });

  function store(name, mode, work) {
    return opened.then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(name, mode);
        var answer = work(tx.objectStore(name));
        tx.oncomplete = function () { resolve(answer && answer.result); };
        tx.onerror = function () { reject(tx.error); };
      });
    });
  }
  function put(name, value) { return store(name, "readwrite", function (s) { s.put(value); }); }
  function get(name, key) { return store(name, "readonly", function (s) { return s.get(key); }); }
  function scans() {
    return store("scans", "readonly", function (s) { return s.index("event").getAll(eventId); })
      .then(function (all) {
        return (all || []).sort(function (a, b) { return a.scanned_at < b.scanned_at ? -1 : 1; });
      });
  }

  // -- the kit -----------------------------------------------------------------------
  function loadKit() {
    return fetch(root.dataset.kit, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("kit " + response.status);
        return response.json();
      })
      .then(function (fresh) { return put("kits", { event: eventId, kit: fresh }).then(function () { return fresh; }); })
      .catch(function () { return get("kits", eventId).then(function (saved) { return saved && saved.kit; }); });
  }

  // -- checking a code here ----------------------------------------------------------
  function bytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function check(code) {
    code = code.trim().split("/").pop();
    if (code.indexOf("S1.") !== 0) {
      // a typed short code cannot carry a signature: the server checks it at sync
      return Promise.resolve({ ok: true, code: code, unchecked: true, kind: /^m/i.test(code) ? "card" : "voucher", name: "" });
    }
    var parts = code.split(".");
    var payload, fields;
    try {
      payload = bytes(parts[1]);
      fields = new TextDecoder().decode(payload).split("|");
    } catch (e) { return Promise.resolve({ ok: false, why: T.forged }); }
    var key = kit.keys.filter(function (k) { return String(k.id) === fields[2]; })[0];
    if (parts.length !== 3 || !key || (fields[0] !== "C" && fields[0] !== "V")) {
      return Promise.resolve({ ok: false, why: T.forged });
    }
    return crypto.subtle.importKey("raw", bytes(key.public_key), { name: "Ed25519" }, false, ["verify"])
      .then(function (publicKey) {
        return crypto.subtle.verify({ name: "Ed25519" }, publicKey, bytes(parts[2]), payload);
      })
      .then(function (genuine) {
        if (!genuine) return { ok: false, why: T.forged };
        if (Number(fields[1]) !== kit.event.town_id) return { ok: false, why: T.otherTown };
        if (fields[0] === "C") {
          var user = fields[3];
          var current = kit.revoked.serials[user];
          if ((current && Number(fields[4]) < current) || kit.revoked.inactive.indexOf(Number(user)) >= 0) {
            return { ok: false, why: T.revoked };
          }
          return { ok: true, code: code, kind: "card", name: fields[5] };
        }
        return { ok: true, code: code, kind: "voucher", name: fields[5] + " · " + fields[6] };
      })
      .catch(function () { return { ok: false, why: T.forged }; });
  }

  // -- showing ---------------------------------------------------------------------
  function say(text, good) {
    result.textContent = text;
    result.className = "scan-result " + (good ? "flash flash-ok" : "flash flash-error");
  }

  function stateText(scan) {
    if (!scan.result) return T.waiting;
    var r = scan.result;
    if (r.outcome === "credited") return T.credited + (r.points ? " +" + r.points : "");
    if (r.outcome === "checked_out") return T.checkedOut + (r.minutes != null ? " " + r.minutes + " " + T.minutes : "") + (r.points ? " +" + r.points : "");
    if (r.outcome === "fulfilled") return T.fulfilled;
    if (r.outcome === "already_done") return T.already;
    return T.refused + (r.message ? ": " + r.message : "");
  }

  function render() {
    return scans().then(function (all) {
      var list = document.getElementById("queue");
      list.textContent = "";
      all.forEach(function (scan) {
        var item = document.createElement("li");
        item.className = "queued " + (scan.result ? scan.result.outcome : "waiting");
        item.dataset.nonce = scan.nonce;
        var who = document.createElement("strong");
        who.textContent = (scan.name || scan.code) + " ";
        var what = document.createElement("span");
        what.className = "muted";
        what.textContent = (scan.kind === "card" ? T.card : T.voucher) + " · "
          + new Date(scan.scanned_at).toLocaleTimeString() + " · ";
        var state = document.createElement("span");
        state.className = "state";
        state.textContent = stateText(scan);
        item.append(who, what, state);
        list.appendChild(item);
      });
    });
  }

  function showNet() {
    document.getElementById("net-state").textContent = navigator.onLine ? T.online : T.offline;
  }

  // -- taking a scan ---------------------------------------------------------------
  function take(text) {
    if (!kit) { say(T.noKit, false); return Promise.resolve(); }
    return check(text).then(function (checked) {
      if (!checked.ok) { say(checked.why, false); return; }
      return scans().then(function (all) {
        // At an event with check-out, a card's later scan (10 s on) is its check-out.
        var earlier = all.filter(function (s) { return s.code === checked.code; });
        var leaving = earlier.length > 0 && kit.event.checkout &&
          Date.now() - Date.parse(earlier[earlier.length - 1].scanned_at) > 10000;
        if (earlier.length && !leaving) { say(T.twice, false); return; }
        var scan = { nonce: crypto.randomUUID(), event: eventId, code: checked.code,
                     kind: checked.kind, name: checked.name, scanned_at: new Date().toISOString(),
                     result: null };
        return put("scans", scan).then(function () {
          say((checked.name ? checked.name + " · " : "") + (leaving ? T.leaving : checked.unchecked ? T.unchecked : T.queued), true);
          return render();
        }).then(function () { if (navigator.onLine) return sync(); });
      });
    });
  }

  // -- syncing -----------------------------------------------------------------------
  function sync() {
    if (syncing) return Promise.resolve();
    var note = document.getElementById("sync-state");
    return scans().then(function (all) {
      var waiting = all.filter(function (s) { return !s.result; });
      // Nothing left to send (another tab sent it meanwhile): show the queue as it is now.
      if (!waiting.length) return render();
      syncing = true;
      note.textContent = T.syncing;
      return fetch(root.dataset.sync, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf },
        body: JSON.stringify({ scans: waiting.map(function (s) {
          return { nonce: s.nonce, code: s.code, scanned_at: s.scanned_at };
        }) })
      }).then(function (response) {
        if (!response.ok) throw new Error("sync " + response.status);
        return response.json();
      }).then(function (answer) {
        var byNonce = {};
        answer.results.forEach(function (r) { byNonce[r.nonce] = r; });
        return Promise.all(waiting.map(function (s) {
          var r = byNonce[s.nonce];
          if (!r) return null;
          s.result = r;
          if (r.name) s.name = r.name;
          return put("scans", s);
        }));
      }).then(function () {
        note.textContent = T.synced;
      }).catch(function () {
        note.textContent = T.syncFailed;
      }).then(function () {
        syncing = false;
        return render();
      });
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    input.value = "";
    take(text);
  });
  document.getElementById("sync-now").addEventListener("click", function () { sync(); });
  window.addEventListener("online", function () { showNet(); sync(); });
  window.addEventListener("offline", showNet);
  showNet();
  loadKit().then(function (loaded) {
    kit = loaded;
    document.getElementById("kit-state").textContent = kit ? T.ready : T.noKit;
    root.dataset.ready = kit ? "yes" : "no";
    return render();
  }).then(function () { if (navigator.onLine) return sync(); });
})();
