// The agent desktop: log in on a softphone, pause with a reason, see the state live; a
// screen-pop when a call is offered and answered (the caller as the role may see them, the
// IVR path and language, a verified ticket, the caller's open and earlier tickets); a ticket
// draft pre-filled from the call; knowledge-base search; hang-up, blind and attended transfer
// (hold is the phone's own: Asterisk 22 has no AMI action that holds a bridged call).
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
