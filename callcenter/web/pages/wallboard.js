// The supervisors' wallboard: per queue, callers waiting and the longest wait (live), today's
// figures and a chart of calls per 15 minutes; every agent's state and time in state, with
// pause, log out and listen / whisper / barge (each audited by the server).
"use strict";

const {el, pct, num} = CC;
const live = {figures: null, queues: {}, agents: {}};
const STATES = {
  available: "空闲 available", ringing: "振铃 ringing", on_call: "通话 on call",
  on_hold: "保持 on hold", after_call_work: "整理 after-call work", paused: "示忙 paused",
  logged_out: "签出 logged out",
};

function figuresOf(name) {
  return ((live.figures && live.figures.queues) || []).find((q) => q.queue === name) || {};
}

function queueCard(name) {
  const q = live.queues[name] || {};
  const f = figuresOf(name);
  const line = (label, value) => el("div", {class: "label"}, label + " " + value);
  return el("div", {class: "card", "data-queue": name},
    el("div", {class: "label"}, name),
    el("div", {class: "value", "data-field": "waiting"}, q.waiting ?? 0),
    el("div", {class: "label"}, "排队 waiting"),
    el("div", {class: "label"}, "最长等待 longest ",
      el("span", {"data-waiting-since": q.oldest_joined_at || ""},
        q.oldest_joined_at ? sinceText(q.oldest_joined_at) : "0:00")),
    line("空闲坐席 available", q.available_agents ?? CC.NA),
    line("呼入 offered", f.offered ?? 0), line("接通 answered", f.answered ?? 0),
    line("放弃 abandoned", f.abandoned ?? 0), line("超时 timeouts", f.timeouts ?? 0),
    line("服务水平 SL", pct(f.service_level)), line("ASA", num(f.average_speed_of_answer) + " s"),
    line("AHT", num(f.average_handle_time) + " s"), line("放弃率 abandon", pct(f.abandon_rate)));
}

function renderQueues() {
  const names = new Set([...Object.keys(live.queues),
    ...((live.figures && live.figures.queues) || []).map((q) => q.queue)]);
  document.getElementById("queues").replaceChildren(...[...names].sort().map(queueCard));
}

// Bars of today's calls per quarter hour, all queues together, drawn as SVG.
function renderChart() {
  const counts = {};
  for (const q of (live.figures && live.figures.queues) || []) {
    for (const [slot, n] of Object.entries(q.per_quarter_hour || {})) counts[slot] = (counts[slot] || 0) + n;
  }
  const slots = Object.keys(counts).sort();
  const target = document.getElementById("chart");
  if (!slots.length) return target.replaceChildren(el("p", {class: "note"}, "今日暂无来电 No calls yet today"));
  const ns = "http://www.w3.org/2000/svg";
  const max = Math.max(...Object.values(counts));
  const width = Math.max(320, slots.length * 28);
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} 140`);
  svg.setAttribute("width", "100%");
  svg.setAttribute("height", "140");
  svg.setAttribute("role", "img");
  slots.forEach((slot, i) => {
    const h = (counts[slot] / max) * 100;
    const bar = document.createElementNS(ns, "rect");
    for (const [k, v] of Object.entries({x: i * 28 + 4, y: 110 - h, width: 20, height: h, fill: "#b3261e"})) bar.setAttribute(k, v);
    const title = document.createElementNS(ns, "title");
    title.textContent = slot + ": " + counts[slot];
    bar.append(title);
    const label = document.createElementNS(ns, "text");
    for (const [k, v] of Object.entries({x: i * 28 + 4, y: 128, "font-size": 9})) label.setAttribute(k, v);
    label.textContent = slot.slice(-5);
    svg.append(bar, label);
  });
  target.replaceChildren(svg);
}

async function act(path, body) {
  CC.clearMessage();
  try {
    await CC.api(path, {method: "POST", body});
  } catch (error) {
    CC.fail(error.message);
  }
}

function agentRow(a) {
  const form = document.getElementById("actions");
  const state = STATES[a.state] || a.state;
  const spy = (mode) => el("button", {type: "button", class: "secondary", onclick: () => {
    if (!form.extension.value) return CC.fail("先填写我的分机 Enter your extension first");
    act(`/agents/${a.agent_id}/spy`, {mode, extension: form.extension.value});
  }}, mode);
  const busy = ["on_call", "on_hold"].includes(a.state);
  return el("tr", {"data-agent": a.agent_id, "data-state": a.state},
    el("td", {}, a.member_name), el("td", {}, state + (a.reason ? " · " + a.reason : "")),
    el("td", {class: "num", "data-since": a.since || ""}, sinceText(a.since)),
    el("td", {}, a.queue ?? ""),
    el("td", {}, a.state === "logged_out" ? "" : [
      el("button", {type: "button", class: "secondary", onclick: () =>
        act(`/agents/${a.agent_id}/pause`, {reason: form.reason.value})}, "示忙 Pause"),
      el("button", {type: "button", class: "secondary", onclick: () =>
        act(`/agents/${a.agent_id}/logout`)}, "签出 Log out"),
      busy ? [spy("listen"), spy("whisper"), spy("barge")] : null]));
}

function renderAgents() {
  const agents = Object.values(live.agents).sort((a, b) => a.member_name.localeCompare(b.member_name));
  const table = CC.table(["坐席 Agent", "状态 State", "持续 Time in state", "队列 Queue", ""], []);
  table.querySelector("tbody").append(...agents.map(agentRow));
  document.getElementById("agents").replaceChildren(table);
}

function onMessage(m) {
  if (m.type === "snapshot") {
    live.figures = m.wallboard;
    live.queues = Object.fromEntries((m.queues || []).map((q) => [q.queue, q]));
    live.agents = Object.fromEntries((m.agents || []).map((a) => [a.agent_id, a]));
    renderQueues(); renderChart(); renderAgents();
  } else if (m.type === "queue") {
    live.queues[m.queue] = m;
    renderQueues();
  } else if (m.type === "wallboard") {
    live.figures = m.wallboard;
    renderQueues(); renderChart();
  } else if (m.type === "agent_state") {
    const known = m.agent_id in live.agents;
    live.agents[m.agent_id] = m;
    // one agent's new state replaces its row; a new agent needs the table again (sorted)
    const row = known && document.querySelector(`#agents tr[data-agent="${m.agent_id}"]`);
    if (row) row.replaceWith(agentRow(m)); else renderAgents();
  }
}

// Times in state and the longest waits move every second without a message.
function tick() {
  for (const cell of document.querySelectorAll("[data-since]")) cell.textContent = sinceText(cell.dataset.since);
  for (const cell of document.querySelectorAll("[data-waiting-since]")) {
    if (cell.dataset.waitingSince) cell.textContent = sinceText(cell.dataset.waitingSince);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const s = CC.requireLogin(["supervisor", "admin"]);
  CC.header(s);
  liveFeed(onMessage, (status) => { document.getElementById("status").textContent = status; });
  setInterval(tick, 1000);
});
