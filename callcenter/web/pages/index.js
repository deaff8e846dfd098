// The login page; once logged in, the pages the user's role may open.
"use strict";

function showHome(s) {
  CC.header(s);
  const list = document.getElementById("pages");
  for (const [name, label, roles] of CC.PAGES) {
    if (!roles || roles.includes(s.user.role)) {
      list.append(CC.el("li", {}, CC.el("a", {href: "/ui/" + name}, label)));
    }
  }
  document.getElementById("home").hidden = false;
}

// Only a page of this site is a place to go back to after login.
function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "";
  return /^\/ui\/[a-z-]*(\?[^\\]*)?$/.test(next) ? next : null;
}

document.addEventListener("DOMContentLoaded", () => {
  const s = CC.session();
  if (s) return showHome(s);
  const form = document.getElementById("login");
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    CC.clearMessage();
    try {
      const session = await CC.login(form.username.value, form.password.value);
      const next = nextPage();
      if (next) return location.assign(next);
      form.hidden = true;
      showHome(session);
    } catch (error) {
      CC.fail(error.message);
    }
  });
});
