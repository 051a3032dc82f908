// The moderation queues (reviews, questions, answers): keyboard shortcuts on the list, and saved
// replies on a review's page. j / k move between the rows, a approves the current one, r opens
// its reasons to reject (Enter rejects with the one picked, Esc goes back). Keys typed in a field
// do nothing here. After a decision the page comes back on the same row, now the next post.
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  var STORE = "queue-row:" + window.location.pathname;

  function typing(target) {
    if (!target || !target.tagName) { return false; }
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function queue() {
    var hint = document.querySelector("[data-queue-keys]");
    var rows = Array.prototype.slice.call(document.querySelectorAll("#result_list tbody tr"));
    if (!hint || !rows.length) { return; }
    hint.hidden = false;
    var current = -1;

    function select(index, focus) {
      if (!rows.length) { return; }
      index = Math.max(0, Math.min(rows.length - 1, index));
      if (current >= 0 && rows[current]) { rows[current].classList.remove("queue-current"); }
      current = index;
      var row = rows[current];
      row.classList.add("queue-current");
      var link = row.querySelector("th a") || row.querySelector("a");
      if (focus && link) { link.focus(); }
      row.scrollIntoView({block: "nearest"});
    }

    function decide(row, what) {
      return row ? row.querySelector('[data-decide="' + what + '"]') : null;
    }

    function remember() { try { window.sessionStorage.setItem(STORE, String(current)); } catch (e) { /* private mode */ } }

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) { return; }
      var target = event.target;
      if (target && target.matches && target.matches('[data-decide="reason"]')) {
        // In a row's reasons: Enter rejects with the reason picked, Esc goes back to the row.
        var row = target.closest("tr");
        if (event.key === "Enter" && target.value) {
          event.preventDefault();
          current = rows.indexOf(row);
          remember();
          decide(row, "reject").click();
        } else if (event.key === "Escape") {
          event.preventDefault();
          select(rows.indexOf(row), true);
        }
        return;
      }
      if (typing(target)) { return; }
      var key = event.key;
      if (key === "j" || key === "k") {
        event.preventDefault();
        select(current < 0 ? 0 : current + (key === "j" ? 1 : -1), true);
      } else if (key === "a" && current >= 0) {
        var approve = decide(rows[current], "approve");
        if (approve) { event.preventDefault(); remember(); approve.click(); }
      } else if (key === "r" && current >= 0) {
        var reasons = decide(rows[current], "reason");
        if (reasons) {
          event.preventDefault();
          reasons.focus();
          try { reasons.showPicker(); } catch (e) { /* not every browser opens a list on request */ }
        }
      }
    });

    var kept = null;
    try { kept = window.sessionStorage.getItem(STORE); window.sessionStorage.removeItem(STORE); } catch (e) { /* none */ }
    if (kept !== null) { select(Number(kept), true); }
  }

  function savedReplies() {
    var picker = document.getElementById("id_reply_template");
    var box = document.getElementById("id_staff_reply");
    if (!picker || !box) { return; }
    picker.addEventListener("change", function () {
      if (picker.value) { box.value = picker.value; box.focus(); }
    });
  }

  ready(function () { queue(); savedReplies(); });
})();
