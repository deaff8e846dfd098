// Shared by every page: the session (the API's bearer token, kept for this tab only), API
// calls with that token, the page header, and DOM helpers that never parse text as HTML.
"use strict";

const CC = (() => {
  const KEY = "callcenter.session";
  const API = "/api/v1";

  // The server's clock decides expiry: an expired token answers 401, which leads to login.
  function session() {
    try {
      return JSON.parse(sessionStorage.getItem(KEY));
    } catch (e) {
      return null;
    }
  }

  async function login(username, password) {
    const response = await fetch(API + "/auth/login", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({username, password}),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(errorText(body, response));
    sessionStorage.setItem(KEY, JSON.stringify(body));
    return body;
  }

  // An <audio> element cannot send the token: the server sets a cookie that opens
  // recordings' audio (and nothing else) for as long as the token lives.
  function mediaSession() {
    return api("/auth/media-session", {method: "POST"});
  }

  async function logout() {
    try {
      if (session()) await api("/auth/media-session", {method: "DELETE"});
    } finally {
      sessionStorage.removeItem(KEY);
      location.assign("/ui/");
    }
  }

  function toLogin() {
    sessionStorage.removeItem(KEY);
    location.assign("/ui/?next=" + encodeURIComponent(location.pathname + location.search));
  }

  // The session, or off to the login page. With roles, a user of another role sees why.
  function requireLogin(roles) {
    const s = session();
    if (!s) {
      toLogin();
      throw new Error("not logged in");
    }
    if (roles && !roles.includes(s.user.role)) {
      fail("This page is for " + roles.join(" / ") + "; you are " + s.user.role + ".");
      throw new Error("wrong role");
    }
    return s;
  }

  function errorText(body, response) {
    const e = body && body.error;
    return e ? e.message + (e.field ? " (" + e.field + ")" : "") : response.status + " " + response.statusText;
  }

  // Calls the API with the session's token: JSON in, JSON out (or a Blob with {blob: true}).
  async function api(path, options = {}) {
    const s = session();
    const headers = {Authorization: "Bearer " + (s ? s.token : "")};
    let body = options.body;
    if (body !== undefined && !(body instanceof Blob)) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(body);
    }
    const response = await fetch(API + path, {method: options.method || "GET", headers, body});
    if (response.status === 401) {
      toLogin();
      throw new Error("session expired");
    }
    if (!response.ok) throw new Error(errorText(await response.json().catch(() => null), response));
    if (response.status === 204) return null;
    if (options.blob) return response.blob();
    return response.json();
  }

  // Saves what the API answered as a file (exports, PDFs): the token stays in a header.
  async function download(path, filename) {
    const blob = await api(path, {blob: true});
    const url = URL.createObjectURL(blob);
    const a = el("a", {href: url, download: filename});
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // el("td", {class: "num"}, "12"): attributes and text children, never HTML.
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function table(head, rows, numeric = []) {
    return el("table", {},
      el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.map((row) => el("tr", {},
        row.map((cell, i) => el("td", numeric.includes(i) ? {class: "num"} : {}, cell))))));
  }

  const NA = "—";
  const pct = (v) => (v === null || v === undefined ? NA : (v * 100).toFixed(1) + "%");
  const num = (v, digits = 1) => (v === null || v === undefined ? NA : Number(v).toFixed(digits));
  const signed = (v) => (v === null || v === undefined ? NA : (v >= 0 ? "+" : "") + (v * 100).toFixed(1) + "%");
  const when = (v) => (v ? new Date(v).toLocaleString() : NA);

  function fail(message) {
    const box = document.getElementById("message");
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  }

  function clearMessage() {
    const box = document.getElementById("message");
    if (box) box.hidden = true;
  }

  const PAGES = [
    ["desktop", "坐席 Desktop", ["agent"]],
    ["wallboard", "实时监控 Wallboard", ["supervisor", "admin"]],
    ["dashboard", "统计 Dashboard", ["supervisor", "admin"]],
    ["campaigns", "回访 Revisits", ["supervisor", "admin"]],
    ["report", "月报 Monthly report", ["supervisor", "admin"]],
    ["tickets", "工单 Tickets", null],
  ];

  // The page header: the pages this role may open, who is logged in, and logout.
  function header(s) {
    const nav = el("nav", {}, el("a", {href: "/ui/", class: "brand"}, "12345"),
      PAGES.filter(([, , roles]) => !roles || roles.includes(s.user.role))
        .map(([name, label]) => el("a", {href: "/ui/" + name}, label)),
      el("span", {class: "who"}, s.user.username + " · " + s.user.role),
      el("button", {type: "button", onclick: logout}, "退出 Log out"));
    document.body.prepend(el("header", {}, nav));
  }

  return {session, login, logout, mediaSession, requireLogin, api, download, el, table, pct, num, signed,
    when, fail, clearMessage, header, PAGES, NA};
})();
