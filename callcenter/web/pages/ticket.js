// One ticket: its facts (personal data as the API's privacy policy returns it), the
// recordings attached to it with a player (range requests through the media cookie set at
// login; every play is audited by the server), contact records, click-to-call for the unit
// handling it, and the timeline.
"use strict";

const {el, table, when, num} = CC;
const ticketId = new URLSearchParams(location.search).get("id");
const FIELDS = [
  ["status", "状态 Status"], ["ticket_type", "类型 Type"], ["topic", "类别 Topic"],
  ["channel", "来源 Channel"], ["content", "诉求 Request"], ["location", "地点 Place"],
  ["created_at", "登记 Created"], ["reply_due_at", "答复期限 Reply due"],
  ["first_contact_at", "首次联系 First contact"], ["revisit_result", "回访 Revisit"],
];

function summary(t) {
  document.getElementById("title").textContent = "工单 " + t.number + (t.title ? " · " + t.title : "");
  const caller = t.caller.anonymous ? "匿名 anonymous"
    : [t.caller.name, t.caller.phone, t.caller.address].filter(Boolean).join(" · ") || CC.NA;
  const rows = FIELDS.map(([key, label]) =>
    [label, key.endsWith("_at") ? when(t[key]) : (t[key] ?? CC.NA)]);
  rows.splice(4, 0, ["来电人 Caller", caller]);
  document.getElementById("summary").replaceChildren(table(["", ""], rows));
}

function player(r) {
  if (r.status !== "stored") return el("span", {class: "note"}, r.status);
  const audio = el("audio", {controls: true, preload: "none", src: r.audio_url,
    "data-recording": r.id});
  const note = el("span", {class: "note", hidden: true}, "无权收听或文件不可用 not available to you");
  audio.addEventListener("error", () => { audio.hidden = true; note.hidden = false; });
  return el("span", {}, audio, note, " ",
    el("a", {href: r.audio_url + "?download=1", download: "recording-" + r.id + ".wav"}, "下载 Download"));
}

async function recordings() {
  const list = await CC.api("/tickets/" + ticketId + "/recordings");
  if (list.recordings.length) await CC.mediaSession();
  const target = document.getElementById("recordings");
  if (!list.recordings.length) return target.replaceChildren(el("p", {class: "note"}, "无 None"));
  target.replaceChildren(table(["用途 Purpose", "结束 Ended", "时长 Duration (s)", "SHA-256", "收听 Listen"],
    list.recordings.map((r) => [r.purpose ?? CC.NA, when(r.ended_at), num(r.duration_seconds),
      r.sha256 ? r.sha256.slice(0, 12) + "…" : CC.NA, player(r)]), [2]));
}

async function contacts() {
  const list = await CC.api("/tickets/" + ticketId + "/contact-calls");
  const rows = list.contact_calls.map((c) => [when(c.requested_at), c.outcome,
    c.handler_outcome ?? CC.NA, num(c.talk_seconds), when(c.ended_at)]);
  document.getElementById("contacts").replaceChildren(rows.length
    ? table(["发起 Requested", "结果 Outcome", "我方 Handler's phone", "通话 Talk (s)", "结束 Ended"], rows, [3])
    : el("p", {class: "note"}, "无 None"));
  return list.contact_calls.some((c) => c.ended_at === null);
}

// What a timeline entry's data says of a call or recording: who, how long, what came of it.
const DETAILS = [
  ["recording_id", (v) => "录音 recording #" + v], ["purpose", (v) => v],
  ["agent", (v) => "坐席 agent " + v], ["by_user_id", (v) => "经办人 handler #" + v],
  ["outcome", (v) => "结果 " + v], ["duration_seconds", (v) => "时长 " + num(v) + " s"],
  ["talk_seconds", (v) => "通话 talk " + num(v) + " s"], ["status", (v) => v],
  ["error", (v) => v], ["text", (v) => "「" + v + "」"],
];

function details(data) {
  return DETAILS.filter(([key]) => data[key] !== undefined && data[key] !== null)
    .map(([key, show]) => show(data[key])).join(", ");
}

async function timeline() {
  const result = await CC.api("/tickets/" + ticketId + "/timeline");
  document.getElementById("timeline").replaceChildren(...result.events.map((e) => {
    const more = details(e.data || {});
    return el("li", {"data-action": e.action}, when(e.at) + " · " + e.action +
      (e.actor_role ? " (" + e.actor_role + ")" : "") +
      (e.to_status ? " → " + e.to_status : "") + (e.reason ? " · " + e.reason : "") +
      (more ? " · " + more : ""));
  }));
}

// While a call is being set up or talked, the contact records refresh until it has ended.
async function follow() {
  for (let i = 0; i < 120; i++) {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    if (!(await contacts())) break;
  }
  await Promise.all([recordings(), timeline()]);
}

async function call(form) {
  CC.clearMessage();
  try {
    await CC.api("/tickets/" + ticketId + "/contact-calls",
      {method: "POST", body: {extension: form.extension.value}});
    await contacts();
    follow();
  } catch (error) {
    CC.fail(error.message);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  const s = CC.requireLogin();
  CC.header(s);
  if (!/^\d+$/.test(ticketId || "")) return CC.fail("no ticket id");
  try {
    summary(await CC.api("/tickets/" + ticketId));
    await Promise.all([recordings(), contacts(), timeline()]);
  } catch (error) {
    return CC.fail(error.message);
  }
  if (s.user.role === "unit_handler") {
    const form = document.getElementById("call");
    form.hidden = false;
    form.addEventListener("submit", (event) => { event.preventDefault(); call(form); });
  }
});
