// The revisit campaigns' progress for supervisors, from GET /revisit/campaigns, re-read every
// few seconds while the page is open; pause and resume through the API (audited there).
"use strict";

const {el} = CC;
const REFRESH_MS = 3000;
const COUNTS = [
  ["pending", "待回访 Pending"],
  ["dialing", "拨号中 Dialing"],
  ["reached", "已接通 Reached"],
  ["satisfied", "满意 Satisfied"],
  ["unsatisfied", "不满意 Unsatisfied"],
  ["unreachable", "未接通 Unreachable"],
  ["declined", "拒访 Declined"],
];

function done(p) {
  return p.reached + p.unreachable;
}

function bar(p) {
  const total = p.pending + p.dialing + done(p);
  const share = total ? Math.round((done(p) / total) * 100) : 0;
  return el("div", {class: "bar", title: done(p) + " / " + total},
    el("progress", {max: 100, value: share, "data-field": "done"}), " " + share + "%");
}

function settings(s) {
  const windows = Object.entries(s.windows || {}).map(([day, [from, to]]) => day + " " + from + "-" + to);
  return el("p", {class: "note"}, "线路 Lines " + s.max_lines + " · " + s.calls_per_second + " calls/s · " +
    "最多 " + s.max_attempts + " attempts · " + windows.join(", "));
}

async function toggle(campaign) {
  CC.clearMessage();
  try {
    await CC.api("/revisit/campaigns/" + campaign.id + (campaign.paused ? "/resume" : "/pause"), {method: "POST"});
    await refresh();
  } catch (e) {
    CC.fail(e.message);
  }
}

function card(campaign) {
  const p = campaign.progress;
  return el("section", {class: "card", "data-campaign": campaign.name},
    el("h2", {}, campaign.name + " ",
      el("span", {class: "note", "data-field": "state"}, campaign.paused ? "paused" : "running")),
    bar(p),
    CC.table(COUNTS.map(([, label]) => label), [COUNTS.map(([key]) => el("span", {"data-field": key}, p[key]))]),
    settings(campaign.settings),
    el("button", {type: "button", "data-action": "toggle", onclick: () => toggle(campaign)},
      campaign.paused ? "恢复 Resume" : "暂停 Pause"));
}

async function refresh() {
  const body = await CC.api("/revisit/campaigns");
  document.getElementById("campaigns").replaceChildren(...body.campaigns.map(card));
  document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
}

async function loop() {
  try {
    await refresh();
  } catch (e) {
    document.getElementById("status").textContent = "retrying";
    CC.fail(e.message);
  }
  setTimeout(loop, REFRESH_MS);
}

function main() {
  const s = CC.requireLogin(["supervisor", "admin"]);
  CC.header(s);
  loop();
}

main();
