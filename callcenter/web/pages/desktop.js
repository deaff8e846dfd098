// The agent desktop: log in on a softphone, pause with a reason, see the state live; a
// screen-pop when a call is offered and answered (the caller as the role may see them, the
// IVR path and language, a verified ticket, the caller's open and earlier tickets); a ticket
// draft pre-filled from the call; knowledge-base search; hang-up, blind and attended transfer
// (hold is the phone's own: Asterisk 22 has no AMI action that holds a bridged call); the
// call's transcript and draft once ready (live, or read when the page opens), each suggested
// field accepted into the ticket form or corrected (both kept: accuracy is measured).
"use strict";

const {el, when} = CC;
let current = null;  // the screen-pop of the call in progress, or null

// A state is shown unless a newer one is: an action's answer can arrive after the live
// event that followed it, and one without a time (never logged in) is older than any.
function showState(a) {
  const shown = document.getElementById("since").dataset.since;
  if (shown && (!a.since || new Date(a.since) < new Date(shown))) return;
  document.getElementById("state").textContent = a.state;
  document.getElementById("state").dataset.state = a.state;
  document.getElementById("reason").textContent = a.reason || "";
  document.getElementById("since").dataset.since = a.since || "";
}

function ticketList(title, tickets) {
  if (!tickets.length) return null;
  return [el("h3", {}, title), el("ul", {}, tickets.map((t) => el("li", {},
    el("a", {href: "/ui/ticket?id=" + t.id, target: "_blank"}, t.number), " ",
    t.status, " · ", t.topic || "", " · ", t.title || "", " · ", when(t.created_at))))];
}

function showCall(pop) {
  if (!pop || pop.phase === "ended" || (current && current.linkedid !== pop.linkedid)) consulting(false);
  current = pop;
  document.getElementById("control").hidden = !pop || pop.phase === "ended";
  const target = document.getElementById("call");
  if (!pop) return target.replaceChildren(el("p", {class: "note"}, "无来电 No call"));
  const ivr = pop.ivr || {};
  target.replaceChildren(el("div", {class: "card", "data-linkedid": pop.linkedid, "data-phase": pop.phase},
    el("div", {class: "value", id: "caller"}, pop.caller.number || "未知号码 unknown"),
    el("div", {class: "label"}, [pop.caller.name, pop.queue, pop.phase].filter(Boolean).join(" · ")),
    pop.transferred_by ? el("div", {class: "label", id: "transferred"}, "转自 From " + pop.transferred_by) : null,
    el("div", {class: "label"}, "IVR: " + (ivr.path || CC.NA) + " · " + (ivr.language || "")),
    ivr.ticket ? el("div", {class: "label", id: "verified"}, "工单 " + ivr.ticket + " · " +
      (ivr.verified ? "已验证 verified" : "未验证 not verified")) : null),
  ...(ticketList("未办结工单 Open tickets", pop.open_tickets) || []),
  ...(ticketList("历史工单 Earlier tickets", pop.earlier_tickets) || []));
  prefill(pop);
}

// A new call's draft starts from what the call tells; what the agent typed stays.
function prefill(pop) {
  const form = document.getElementById("ticket");
  if (form.dataset.linkedid === pop.linkedid) return;
  form.reset();
  form.dataset.linkedid = pop.linkedid;
  form.name.value = pop.caller.name || "";
  form.phone.value = pop.caller.masked ? "" : (pop.caller.number || "");
  document.getElementById("saved").textContent = "";
  showDraft(null);
}

// Which ticket form field a suggested field fills (the others are only confirmed).
const FORM_FIELDS = {type: "ticket_type", topic: "topic", phone: "phone", address: "location",
  summary: "title"};
const SPEAKERS = {citizen: "市民 citizen", agent: "坐席 agent", unknown: "未知 unknown"};

const span = (start, end) => clockText(start) + "–" + clockText(end);

// The draft of the call the form is for: a transcript of another call is not shown here.
function showDraft(draft) {
  const target = document.getElementById("draft");
  const form = document.getElementById("ticket");
  if (draft && draft.linkedid !== form.dataset.linkedid) return;
  if (!draft) return target.replaceChildren(el("p", {class: "note"}, "暂无转写 No transcript yet"));
  const t = draft.transcript;
  target.dataset.linkedid = draft.linkedid;
  target.dataset.transcript = t.id;
  target.replaceChildren(
    el("ol", {class: "transcript"}, t.segments.map((s) => el("li", {"data-speaker": s.speaker},
      SPEAKERS[s.speaker] || s.speaker, " · ", span(s.start, s.end), " · ", s.text))),
    t.suggestions.length ? el("table", {id: "suggestions"},
      el("tr", {}, ["字段 Field", "建议 Suggested", "置信度 Confidence", "出处 From", "操作 Action"]
        .map((h) => el("th", {}, h))),
      t.suggestions.map(suggestionRow)) : el("p", {class: "note"}, "无建议 No suggestions"));
}

function suggestionRow(s) {
  const value = s.corrected_value || s.value;
  const correction = el("input", {name: "correction", value, size: "16"});
  const row = el("tr", {"data-suggestion": s.id, "data-field": s.field, "data-state": s.state},
    el("td", {}, s.field), el("td", {class: "value"}, value),
    el("td", {class: "num"}, CC.pct(s.confidence)),
    el("td", {}, span(s.start, s.end), " · ", s.evidence),
    el("td", {}, el("button", {type: "button", class: "accept"}, "采纳 Accept"), " ", correction,
      el("button", {type: "button", class: "secondary correct"}, "更正 Correct")));
  row.querySelector(".accept").addEventListener("click", () =>
    decide(row, s, "/confirm", undefined, s.value_masked ? null : s.value));
  row.querySelector(".correct").addEventListener("click", () =>
    decide(row, s, "/correct", {value: correction.value}, correction.value));
  return row;
}

// The verdict is stored first; the form field takes the value once it is (a value masked
// for this agent is confirmed but not copied: the form would keep the stars).
async function decide(row, s, path, body, value) {
  CC.clearMessage();
  try {
    const decided = await CC.api("/speech/suggestions/" + s.id + path, {method: "POST", body});
    row.dataset.state = decided.state;
    row.querySelector(".value").textContent = decided.corrected_value || decided.value;
    const name = FORM_FIELDS[s.field];
    if (name && value !== null) document.getElementById("ticket").elements[name].value = value;
  } catch (error) {
    CC.fail(error.message);
  }
}

// The newest finished transcript of the form's call (after a reload or a lost buffer).
async function loadDraft() {
  const linkedid = document.getElementById("ticket").dataset.linkedid;
  if (!linkedid) return;
  try {
    const list = await CC.api("/calls/" + encodeURIComponent(linkedid) + "/transcripts");
    const done = list.transcripts.filter((t) => t.status === "done" && t.purpose === "call");
    if (done.length) showDraft({linkedid, transcript: done[done.length - 1]});
  } catch (error) {
    CC.fail(error.message);
  }
}

async function act(path, body) {
  CC.clearMessage();
  try {
    const agent = await CC.api(path, {method: "POST", body});
    if (agent && agent.state) showState(agent);
    return true;
  } catch (error) {
    CC.fail(error.message);
    return false;
  }
}

async function saveDraft(form) {
  CC.clearMessage();
  const caller = {name: form.name.value || null, phone: form.phone.value || null};
  const body = {channel: "phone", ticket_type: form.ticket_type.value,
    topic: form.topic.value || null, title: form.title.value || null,
    content: form.content.value, location: form.location.value || null, caller,
    calls: form.dataset.linkedid ? [{linkedid: form.dataset.linkedid}] : []};
  try {
    const ticket = await CC.api("/tickets", {method: "POST", body});
    const saved = document.getElementById("saved");
    saved.replaceChildren("已保存 Saved ", el("a", {href: "/ui/ticket?id=" + ticket.id, target: "_blank"}, ticket.number));
  } catch (error) {
    CC.fail(error.message);
  }
}

async function searchKnowledge(form) {
  try {
    const result = await CC.api("/knowledge?" + new URLSearchParams({q: form.q.value}));
    document.getElementById("articles").replaceChildren(...result.articles.map((a) =>
      el("li", {}, el("strong", {}, a.title), " ", a.body)));
  } catch (error) {
    CC.fail(error.message);
  }
}

function transfer(form, kind) {
  const body = form.target.value ? {extension: form.target.value} : {queue: form.queue.value};
  act("/agents/me/call/" + kind, body).then((ok) => ok && consulting(kind === "attended-transfer"));
}

// While the agent consults the target, the call can be handed over or taken back.
function consulting(on) {
  document.getElementById("complete").hidden = !on;
  document.getElementById("cancel").hidden = !on;
}

function showDesk(desk) {
  const option = (value, label) => el("option", {value}, label);
  document.getElementById("reasons").replaceChildren(...desk.pause_reasons.map((r) => option(r, r)));
  document.getElementById("queues").replaceChildren(...desk.queues.map((q) => option(q.name, q.name + " · " + q.language)));
  document.getElementById("topics").replaceChildren(...desk.topics.map((t) => option(t.code, t.label)));
}

function onMessage(m) {
  if (m.type === "snapshot") {
    const mine = (m.agents || [])[0];
    if (mine) showState(mine);
    loadDraft();
  } else if (m.type === "draft") {
    showDraft(m);
  } else if (m.type === "agent_state") {
    showState(m);
  } else if (m.type === "screen_pop") {
    showCall(m.screen_pop);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  const s = CC.requireLogin(["agent"]);
  CC.header(s);
  const session = document.getElementById("session");
  try {
    const me = await CC.api("/agents/me");
    session.extension.value = me.extension;
    showState(me);
    showDesk(await CC.api("/agents/me/desk"));
    showCall((await CC.api("/agents/me/call")).call);
  } catch (error) {
    CC.fail(error.message);
  }
  document.getElementById("login").addEventListener("click", () =>
    act("/agents/me/login", session.extension.value ? {extension: session.extension.value} : {}));
  document.getElementById("logout").addEventListener("click", () => act("/agents/me/logout"));
  document.getElementById("pause").addEventListener("click", () =>
    act("/agents/me/pause", {reason: session.reason.value}));
  document.getElementById("unpause").addEventListener("click", () => act("/agents/me/unpause"));
  document.getElementById("extend").addEventListener("click", () =>
    act("/agents/me/after-call-work/extend", {seconds: 60}));
  const control = document.getElementById("control");
  document.getElementById("hangup").addEventListener("click", () => act("/agents/me/call/hangup"));
  document.getElementById("transfer").addEventListener("click", () => transfer(control, "blind-transfer"));
  document.getElementById("consult").addEventListener("click", () => transfer(control, "attended-transfer"));
  document.getElementById("complete").addEventListener("click", () =>
    act("/agents/me/call/attended-transfer/complete").then((ok) => ok && consulting(false)));
  document.getElementById("cancel").addEventListener("click", () =>
    act("/agents/me/call/attended-transfer/cancel").then((ok) => ok && consulting(false)));
  document.getElementById("ticket").addEventListener("submit", (e) => { e.preventDefault(); saveDraft(e.target); });
  document.getElementById("knowledge").addEventListener("submit", (e) => { e.preventDefault(); searchKnowledge(e.target); });
  liveFeed(onMessage, (status) => { document.getElementById("status").textContent = status; });
  setInterval(() => {
    const since = document.getElementById("since");
    since.textContent = since.dataset.since ? sinceText(since.dataset.since) : "";
  }, 1000);
});
