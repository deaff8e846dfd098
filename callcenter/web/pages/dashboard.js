// The supervisors' dashboard: the report's figures for any date range, by unit and topic,
// from GET /reports/figures; CSV and Excel from GET /reports/export.
"use strict";

const {el, table, pct, num, signed} = CC;

const OFFICE_CARDS = [
  ["received", "受理 Orders received", (o) => o.received],
  ["completion_rate", "办结率 Completion", (o) => pct(o.rates.completion_rate)],
  ["on_time_completion_rate", "按时办结率 On time", (o) => pct(o.rates.on_time_completion_rate)],
  ["timely_acceptance_rate", "及时接收率 Timely acceptance", (o) => pct(o.rates.timely_acceptance_rate)],
  ["timely_first_contact_rate", "及时联系率 Timely contact", (o) => pct(o.rates.timely_first_contact_rate)],
  ["revisit_reach_rate", "回访率 Revisit reach", (o) => pct(o.rates.revisit_reach_rate)],
  ["satisfaction_rate", "满意率 Satisfaction", (o) => pct(o.rates.satisfaction_rate)],
  ["overdue", "超期 Overdue", (o) => o.overdue],
];

const CALL_ROWS = [
  ["呼入 Offered to queues", (c) => c.offered],
  ["接通 Answered", (c) => c.answered],
  ["放弃 Abandoned by caller", (c) => c.abandoned],
  ["排队超时 Queue timeouts", (c) => c.timeouts],
  ["放弃率 Abandon rate (without / with timeouts)",
    (c) => pct(c.rates.abandon_rate) + " / " + pct(c.rates.abandon_rate_with_timeouts)],
  ["服务水平 Service level", (c) => pct(c.rates.service_level)],
  ["平均应答 ASA (s)", (c) => num(c.rates.average_speed_of_answer)],
  ["平均处理 AHT (s)", (c) => num(c.rates.average_handle_time)],
  ["IVR 自助率 Self-service", (c) => pct(c.rates.ivr_self_service_rate)],
  ["坐席占用率 Agent occupancy", (c) => pct(c.rates.agent_occupancy)],
];

const hours = (seconds) => num(seconds / 3600) + " h";

function pauses(calls) {
  const byReason = (calls.agent_time || {}).pause_by_reason || {};
  return Object.entries(byReason).map(([reason, seconds]) =>
    ["示忙 Paused: " + (reason || CC.NA), hours(seconds)]);
}

function query(form, extra = {}) {
  const params = new URLSearchParams({start: form.start.value, end: form.end.value, ...extra});
  if (form.unit_id.value) params.set("unit_id", form.unit_id.value);
  if (form.topic.value.trim()) params.set("topic", form.topic.value.trim());
  return params.toString();
}

function shares(title, rows) {
  return [el("h2", {}, title), table(["", "数量 Count", "占比 Share", "环比 MoM", "同比 YoY"],
    rows.map((r) => [r.label || r.key, r.count, pct(r.share), signed(r.mom), signed(r.yoy)]),
    [1, 2, 3, 4])];
}

function units(figures) {
  const head = ["排名 Rank", "单位 Unit", "受理 Received", "及时接收 Accept", "办结 Completion",
    "按时 On time", "满意 Satisfaction", "退件 Returns", "返工 Reworks", "得分 Score", "等级 Grade"];
  return table(head, figures.units.map((u) => [u.rank ?? CC.NA, u.unit_name, u.received,
    pct(u.rates.timely_acceptance_rate), pct(u.rates.completion_rate),
    pct(u.rates.on_time_completion_rate), pct(u.rates.satisfaction_rate), u.returns,
    u.reworks, num(u.score), u.grade ?? CC.NA]), [0, 2, 3, 4, 5, 6, 7, 8, 9]);
}

function render(figures) {
  const office = figures.office;
  const calls = figures.calls;
  const target = document.getElementById("figures");
  target.replaceChildren(
    el("p", {class: "note", id: "period"}, figures.period.label + " · " +
      figures.period.working_days + " 工作日 working days"),
    el("div", {class: "cards"}, OFFICE_CARDS.map(([key, label, value]) =>
      el("div", {class: "card", "data-kpi": key},
        el("div", {class: "value"}, value(office)), el("div", {class: "label"}, label)))),
    el("h2", {}, "单位考核 Units"), units(figures),
    ...shares("来源 By channel", figures.by_channel),
    ...shares("类型 By type", figures.by_type),
    ...shares("类别 By topic", figures.by_topic),
    el("h2", {}, "超期 Overdue by unit"),
    table(["单位 Unit", "超期 Overdue"], figures.overdue_by_unit.map((u) => [u.unit, u.overdue]), [1]),
    el("h2", {}, "话务 Calls"),
    table(["", ""], [...CALL_ROWS.map(([label, value]) => [label, value(calls)]), ...pauses(calls)],
      [1]),
    el("h2", {}, "坐席 Agents"),
    table(["坐席 Agent", "振铃 Rings", "接听 Answered", "未接 Missed", "通话 Talk (s)",
      "签入 Logged in", "示忙 Paused", "占用率 Occupancy"],
    figures.agents.map((a) => [a.agent, a.rings, a.answered, a.missed, num(a.talk_seconds, 0),
      hours(a.logged_in_seconds || 0), hours(a.paused_seconds || 0), pct(a.occupancy)]),
    [1, 2, 3, 4, 5, 6, 7]));
}

async function show(form) {
  CC.clearMessage();
  try {
    const result = await CC.api("/reports/figures?" + query(form));
    render(result.figures);
  } catch (error) {
    CC.fail(error.message);
  }
}

async function exportAs(form, format) {
  CC.clearMessage();
  try {
    await CC.download("/reports/export?" + query(form, {format}),
      "report-" + form.start.value + "-" + form.end.value + "." + format);
  } catch (error) {
    CC.fail(error.message);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  const s = CC.requireLogin(["supervisor", "admin"]);
  CC.header(s);
  const form = document.getElementById("range");
  const today = new Date();
  const iso = (d) => d.toLocaleDateString("sv-SE");  // YYYY-MM-DD in the browser's zone
  form.start.value = iso(new Date(today.getFullYear(), today.getMonth(), 1));
  form.end.value = iso(today);
  const params = new URLSearchParams(location.search);
  for (const name of ["start", "end", "topic"]) if (params.get(name)) form[name].value = params.get(name);
  try {
    const list = await CC.api("/units");
    for (const unit of list.units) form.unit_id.append(el("option", {value: unit.id}, unit.name));
    if (params.get("unit_id")) form.unit_id.value = params.get("unit_id");
  } catch (error) {
    CC.fail(error.message);
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); show(form); });
  document.getElementById("csv").addEventListener("click", () => exportAs(form, "csv"));
  document.getElementById("xlsx").addEventListener("click", () => exportAs(form, "xlsx"));
  show(form);
});
