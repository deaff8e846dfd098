// The ticket list: newest first, as the API lets the user see them (a unit its own orders),
// with numbers masked; each row opens the ticket page.
"use strict";

const {el} = CC;
let cursor = null;

function row(t) {
  return el("tr", {},
    el("td", {}, el("a", {href: "/ui/ticket?id=" + t.id}, t.number)),
    el("td", {}, t.status), el("td", {}, t.ticket_type), el("td", {}, t.topic ?? CC.NA),
    el("td", {}, t.title ?? CC.NA), el("td", {}, CC.when(t.created_at)),
    el("td", {}, CC.when(t.reply_due_at)), el("td", {}, t.overdue ? "超期 overdue" : ""));
}

async function load(form, more) {
  CC.clearMessage();
  const params = new URLSearchParams({limit: "50"});
  if (form.text.value.trim()) params.set("text", form.text.value.trim());
  if (form.status.value.trim()) params.set("status", form.status.value.trim());
  if (form.overdue.checked) params.set("overdue", "true");
  if (more && cursor) params.set("cursor", cursor);
  try {
    const page = await CC.api("/tickets?" + params);
    const list = document.getElementById("list");
    if (!more || !list.querySelector("tbody")) {
      list.replaceChildren(CC.table(["编号 Number", "状态 Status", "类型 Type", "类别 Topic",
        "标题 Title", "登记 Created", "答复期限 Reply due", ""], []));
    }
    list.querySelector("tbody").append(...page.items.map(row));
    cursor = page.next_cursor;
    document.getElementById("more").hidden = !cursor;
  } catch (error) {
    CC.fail(error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  CC.header(CC.requireLogin());
  const form = document.getElementById("search");
  form.addEventListener("submit", (event) => { event.preventDefault(); load(form, false); });
  document.getElementById("more").addEventListener("click", () => load(form, true));
  load(form, false);
});
