// The monthly report page: the month's report as the office publishes it (the same HTML as
// `callcenter report monthly`, shown in a sandboxed frame), its PDF, and freezing the month.
"use strict";

async function status(month) {
  const result = await CC.api("/reports/monthly/" + month);
  const text = result.frozen_version === null
    ? "未冻结：实时数据 Live figures (the month is not frozen)"
    : "已冻结 Frozen, version " + result.frozen_version +
      (result.corrections.length ? " · " + result.corrections.length + " 更正 corrections" : "");
  document.getElementById("status").textContent = text;
}

async function show(form) {
  CC.clearMessage();
  const month = form.month.value;
  try {
    const [html] = await Promise.all([
      CC.api("/reports/monthly/" + month + "/document?format=html", {blob: true}).then((b) => b.text()),
      status(month),
    ]);
    document.getElementById("document").srcdoc = html;
    history.replaceState(null, "", "?month=" + month);
  } catch (error) {
    CC.fail(error.message);
  }
}

async function freeze(form) {
  CC.clearMessage();
  const reason = form.reason.value.trim();
  try {
    const frozen = await CC.api("/reports/monthly/" + form.month.value + "/freeze",
      {method: "POST", body: reason ? {reason} : {}});
    form.reason.value = "";
    await show(form);
    document.getElementById("status").textContent += " · " + frozen.changes + " changed figures";
  } catch (error) {
    CC.fail(error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const s = CC.requireLogin(["supervisor", "admin"]);
  CC.header(s);
  const form = document.getElementById("month");
  const asked = new URLSearchParams(location.search).get("month");
  const now = new Date();
  const last = new Date(now.getFullYear(), now.getMonth() - 1, 1);
  form.month.value = /^\d{4}-\d{2}$/.test(asked || "") ? asked
    : last.getFullYear() + "-" + String(last.getMonth() + 1).padStart(2, "0");
  form.addEventListener("submit", (event) => { event.preventDefault(); show(form); });
  document.getElementById("pdf").addEventListener("click", async () => {
    try {
      await CC.download("/reports/monthly/" + form.month.value + "/document?format=pdf",
        "report-" + form.month.value + ".pdf");
    } catch (error) {
      CC.fail(error.message);
    }
  });
  document.getElementById("freeze").addEventListener("click", () => freeze(form));
  show(form);
});
