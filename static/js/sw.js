// Torreya's service worker (served as /sw.js, scope "/").
// - The staff's offline scanner (/events/N/scan/offline) and the static files it needs are
//   kept: network first, the kept copy when there is no signal.
// - A page that cannot be reached (no signal) shows /offline, which keeps the address (and
//   with it a scanned check-in code) and offers to try again.
// Everything else goes to the network untouched.
"use strict";
var CACHE = "torreya-offline-v1";
var OFFLINE = "/offline";
var SCANNER = /^\/events\/\d+\/scan\/offline$/;

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return cache.addAll([OFFLINE, "/static/css/torreya.css", "/static/js/retry.js",
      "/static/js/sw-register.js"]);
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n !== CACHE; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

function kept(request) {
  var path = new URL(request.url).pathname;
  return request.method === "GET" && (path.indexOf("/static/") === 0 || SCANNER.test(path));
}

function networkFirst(request) {
  return fetch(request).then(function (response) {
    if (response.ok) {
      var copy = response.clone();
      caches.open(CACHE).then(function (cache) { cache.put(request, copy); });
    }
    return response;
  }).catch(function () {
    return caches.match(request).then(function (hit) {
      if (hit) return hit;
      return request.mode === "navigate" ? caches.match(OFFLINE) : Response.error();
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (kept(request)) {
    event.respondWith(networkFirst(request));
  } else if (request.mode === "navigate" && (request.method === "GET"
             || url.pathname.indexOf("/c/") === 0)) {
    event.respondWith(fetch(request).catch(function () { return caches.match(OFFLINE); }));
  }
});
