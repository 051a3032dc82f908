// The campaign page's "In the audience now" follows the audience fields as staff change them:
// the form is sent, unsaved, to the admin's audience view, and its answer replaces the count.
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    var box = document.querySelector("[data-audience-count]");
    var form = document.getElementById("campaign_form");
    if (!box || !form) { return; }
    box.setAttribute("aria-live", "polite");
    var url = form.getAttribute("action") || window.location.pathname;
    var endpoint = url.replace(/(add|\d+\/change)\/?(\?.*)?$/, "audience/");
    var match = window.location.pathname.match(/\/(\d+)\/change\/$/);
    var timer = null;
    function refresh() {
      var data = new FormData(form);
      if (match) { data.append("campaign_id", match[1]); }
      data.delete("member_list");  // an upload is read when the campaign is saved
      box.textContent = box.dataset.counting || "Counting…";
      fetch(endpoint, {method: "POST", body: data, credentials: "same-origin",
                       headers: {"X-Requested-With": "fetch"}})
        .then(function (response) { return response.json(); })
        .then(function (answer) {
          if (answer.html) {
            box.innerHTML = answer.html;
          } else {
            var words = [];
            Object.keys(answer.errors || {}).forEach(function (name) { words.push(answer.errors[name].join(" ")); });
            box.textContent = (box.dataset.notCounted || "Not counted:") + " " + words.join(" ");
          }
        })
        .catch(function () { box.textContent = box.dataset.failed || "Could not count just now."; });
    }
    form.addEventListener("input", function (event) {
      if (!event.target.closest(".module")) { return; }
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 400);
    });
    form.addEventListener("change", function () { window.clearTimeout(timer); timer = window.setTimeout(refresh, 400); });
  });
})();
