// The queues' live feed (GET /api/v1/queues/live, a websocket): reconnects by itself with a
// growing pause (0.5 s up to 10 s) and catches up on what it missed (since/feed), or starts
// again from a snapshot. Message types and fields: callcenter/queues/feed.py.
"use strict";

function liveFeed(onMessage, onStatus) {
  let last = null;
  let feed = null;
  let delay = 500;
  let socket = null;
  let stopped = false;

  function url() {
    const s = CC.session();
    const params = new URLSearchParams({access_token: s ? s.token : ""});
    if (last !== null && feed) {
      params.set("since", String(last));
      params.set("feed", feed);
    }
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + location.host + "/api/v1/queues/live?" + params;
  }

  function connect() {
    let opened = false;
    socket = new WebSocket(url());
    socket.onopen = () => {
      opened = true;
      delay = 500;
      onStatus("live");
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.seq !== undefined) {
        last = message.seq;
        feed = message.feed;
      }
      onMessage(message);
    };
    socket.onclose = async () => {
      if (stopped) return;
      onStatus("reconnecting");
      // Refused before opening: a lapsed session goes to the login page (CC.api does that).
      if (!opened) await CC.api("/auth/me").catch(() => null);
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }

  connect();
  return {stop() { stopped = true; if (socket) socket.close(); }};
}

// "3:07" or "1:02:03" from seconds.
function clockText(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hms = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60];
  const parts = hms[0] ? hms : hms.slice(1);
  return parts.map((v, i) => (i ? String(v).padStart(2, "0") : String(v))).join(":");
}

const sinceText = (iso) => (iso ? clockText((Date.now() - new Date(iso)) / 1000) : CC.NA);
