// The portal's few behaviours, in one file: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";

  // Survey follow-up questions appear only for the answers they follow up (the server decides too).
  const followUps = document.querySelectorAll("[data-parent]");
  if (followUps.length) {
    const refresh = function () {
      followUps.forEach(function (box) {
        const picked = document.querySelector('input[name="' + box.dataset.parent + '"]:checked');
        const score = picked ? Number(picked.value) : null;
        const low = box.dataset.min === "" ? -1 : Number(box.dataset.min);
        const high = box.dataset.max === "" ? 1000 : Number(box.dataset.max);
        box.hidden = score === null || score < low || score > high;
      });
    };
    document.addEventListener("change", refresh);
    refresh();
  }

  // The phone's menu button: folds the navigation away, and out again (aria-expanded says which).
  const menu = document.querySelector(".menu-button");
  if (menu) {
    document.documentElement.classList.add("js-nav");
    const list = document.getElementById(menu.getAttribute("aria-controls"));
    menu.addEventListener("click", function () {
      const open = menu.getAttribute("aria-expanded") !== "true";
      menu.setAttribute("aria-expanded", String(open));
      list.classList.toggle("open", open);
    });
  }

  // The refer-a-friend link: copy it, or select it where the clipboard is not allowed.
  const copy = document.getElementById("copy-link");
  if (copy) {
    copy.addEventListener("click", function () {
      navigator.clipboard.writeText(copy.dataset.link).then(function () { copy.textContent = copy.dataset.copied || "Copied"; },
        function () { document.getElementById("referral-link").select(); });
    });
  }

  // Filters that apply as soon as they change (a plain submit button stays for no-JS).
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // Read-only fields that select themselves on click (a new API key, to copy it).
  document.querySelectorAll("input[data-select-on-click]").forEach(function (input) {
    input.addEventListener("click", function () { input.select(); });
  });
})();
