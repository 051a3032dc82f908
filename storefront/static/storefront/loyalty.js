/* Loyalty Loop storefront widgets, v1. One script, no framework:
 *   <script src="https://loyalty.example.com/embed/v1/loyalty.js" data-store="pk_live_..." async></script>
 *   <loyalty-launcher customer-token="eyJ..."></loyalty-launcher>
 *   <loyalty-reviews sku="TEA-1"></loyalty-reviews>
 *   <loyalty-stars sku="TEA-1"></loyalty-stars>
 * Each element draws in its own Shadow DOM (the shop's styles and ours never meet) and is themed by
 * CSS custom properties: --loyalty-primary, --loyalty-accent, --loyalty-text, --loyalty-surface,
 * --loyalty-radius, --loyalty-font. Text always goes in as text, never as HTML. */
(function () {
  "use strict";
  if (window.customElements && customElements.get("loyalty-launcher")) return; // included twice
  var script = document.currentScript ||
    document.querySelector('script[src*="/embed/v1/loyalty.js"][data-store]');
  var STORE = script ? script.getAttribute("data-store") : "";
  var BASE = script ? new URL("./", script.src).href : "/embed/v1/";

  // --- Talking to Loyalty Loop -------------------------------------------------------------------
  function api(path, options) {
    options = options || {};
    var headers = { "X-Store": STORE, Accept: "application/json" };
    if (options.token) headers.Authorization = "Bearer " + options.token;
    if (options.json !== undefined) headers["Content-Type"] = "application/json";
    if (options.key) headers["Idempotency-Key"] = options.key;
    return fetch(BASE + path, {
      method: options.method || "GET", headers: headers, credentials: "omit", mode: "cors",
      body: options.json !== undefined ? JSON.stringify(options.json) : options.form
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.ok) return body;
        var error = new Error((body.error && body.error.message) || "Something went wrong (" + response.status + ").");
        error.status = response.status;
        error.fields = (body.error && body.error.fields) || {};
        throw error;
      });
    });
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + Math.random().toString(16).slice(2);
  }

  // --- Building DOM --------------------------------------------------------------------------------
  function h(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), value);
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    });
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }
  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach(function (c) { append(node, c); });
    else node.appendChild(typeof child === "string" || typeof child === "number"
      ? document.createTextNode(String(child)) : child);
  }
  function number(n) { return Number(n || 0).toLocaleString(); }
  function day(iso) { return iso ? new Date(iso).toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" }) : ""; }
  function starsText(rating) {
    var full = Math.round(Number(rating) || 0);
    return "★★★★★".slice(0, full) + "☆☆☆☆☆".slice(0, 5 - full);
  }

  var CSS = [
    ":host{--_p:var(--loyalty-primary,#1f6f5c);--_a:var(--loyalty-accent,#b3541e);--_t:var(--loyalty-text,#1d2327);",
    "--_s:var(--loyalty-surface,#fff);--_r:var(--loyalty-radius,10px);font-family:var(--loyalty-font,system-ui,sans-serif);",
    "color:var(--_t);font-size:16px;line-height:1.45}",
    "*{box-sizing:border-box}button,input,select,textarea{font:inherit}",
    "button{cursor:pointer;border-radius:calc(var(--_r)/1.5);border:1px solid var(--_p);background:var(--_s);color:var(--_p);padding:.4em .9em}",
    "button.primary{background:var(--_p);color:#fff}button:disabled{opacity:.6;cursor:default}",
    "button:focus-visible,a:focus-visible,input:focus-visible,select:focus-visible,textarea:focus-visible{outline:3px solid var(--_a);outline-offset:2px}",
    "a{color:var(--_p)}h2,h3{margin:.2em 0 .4em;line-height:1.2}h2{font-size:1.2em}h3{font-size:1em}",
    ".muted{color:#50575e;font-size:.9em}.error{color:#a4281b;font-weight:600}.ok{color:#1b6b2f;font-weight:600}",
    ".bar{height:.5em;background:#e6e8ea;border-radius:1em;overflow:hidden}.bar>span{display:block;height:100%;background:var(--_p)}",
    "ul{list-style:none;margin:0;padding:0}li{margin:.35em 0}section{margin:.9em 0}",
    ".stars{color:#8a5300;letter-spacing:.05em}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}"
  ].join("");

  function shadow(element, extraCss) {
    var root = element.shadowRoot || element.attachShadow({ mode: "open" });
    root.textContent = "";
    root.appendChild(h("style", { text: CSS + (extraCss || "") }));
    return root;
  }

  // --- <loyalty-launcher> --------------------------------------------------------------------------
  var LAUNCHER_CSS = [
    ".toggle{position:fixed;right:1.2em;bottom:1.2em;z-index:2147483000;background:var(--_p);color:#fff;border:0;",
    "border-radius:2em;padding:.7em 1.2em;box-shadow:0 4px 14px rgba(0,0,0,.25);font-weight:600}",
    ".panel{position:fixed;right:1.2em;bottom:4.6em;z-index:2147483000;width:min(24em,calc(100vw - 2.4em));",
    "max-height:min(36em,calc(100vh - 6em));overflow:auto;background:var(--_s);border-radius:var(--_r);",
    "box-shadow:0 8px 30px rgba(0,0,0,.3);padding:1em 1.2em}",
    ".panel[hidden]{display:none}.big{font-size:1.8em;font-weight:700;color:var(--_p)}",
    ".row{display:flex;gap:.5em;align-items:center;justify-content:space-between;flex-wrap:wrap}",
    ".coupon{font-family:ui-monospace,monospace;font-size:1.1em;background:#f3f4f5;padding:.2em .5em;border-radius:4px}",
    ".close{float:right;border:0;font-size:1.3em;line-height:1;padding:.1em .4em}"
  ].join("");

  class LoyaltyLauncher extends HTMLElement {
    static get observedAttributes() { return ["customer-token"]; }
    connectedCallback() { this.open = false; this.load(); }
    attributeChangedCallback() { if (this.isConnected && this.data) this.load(); }
    get token() { return this.getAttribute("customer-token") || ""; }

    load() {
      var self = this;
      var guest = function () {
        return api("program/").then(function (data) { self.member = null; self.show(data); });
      };
      var request = this.token ? api("me/", { token: this.token }).then(function (data) {
        self.member = data.member; self.show(data);
      }).catch(function (error) {
        if (error.status === 401 || error.status === 403) { self.tokenProblem = error.message; return guest(); }
        throw error;
      }) : guest();
      request.catch(function (error) { self.fail(error); });
    }

    fail(error) {
      var root = shadow(this, LAUNCHER_CSS);
      root.appendChild(h("p", { class: "sr", role: "status", text: "Rewards are unavailable: " + error.message }));
    }

    show(data) {
      this.data = data;
      var self = this;
      var root = shadow(this, LAUNCHER_CSS);
      if (data.program && data.program.colour && !getComputedStyle(this).getPropertyValue("--loyalty-primary").trim()) {
        this.style.setProperty("--loyalty-primary", data.program.colour);
      }
      var label = this.member ? number(data.points.available) + " points" : "Rewards";
      this.toggle = h("button", {
        class: "toggle", type: "button", "aria-expanded": String(this.open), "aria-controls": "panel",
        onclick: function () { self.setOpen(!self.open); }
      }, "★ ", label);
      this.panel = h("div", { class: "panel", id: "panel", role: "dialog", "aria-label": data.program.name, hidden: !this.open,
        onkeydown: function (event) { if (event.key === "Escape") { self.setOpen(false); } } });
      this.status = h("p", { role: "status", "aria-live": "polite", class: "muted" });
      append(this.panel, [
        h("button", { class: "close", type: "button", "aria-label": "Close", onclick: function () { self.setOpen(false); } }, "×"),
        h("h2", { text: data.program.name }),
        this.status,
        this.member ? this.memberView(data) : this.guestView(data),
        this.earnView(data)
      ]);
      root.appendChild(this.toggle);
      root.appendChild(this.panel);
    }

    setOpen(open) {
      this.open = open;
      this.toggle.setAttribute("aria-expanded", String(open));
      this.panel.hidden = !open;
      if (open) this.panel.querySelector("h2").setAttribute("tabindex", "-1"), this.panel.querySelector("h2").focus();
      else this.toggle.focus();
    }

    say(text, kind) { this.status.className = kind || "muted"; this.status.textContent = text; }

    guestView(data) {
      var p = data.program;
      return [
        h("section", {},
          h("p", {}, "Join to earn points on every order and get rewards."),
          this.tokenProblem ? h("p", { class: "muted", text: "(" + this.tokenProblem + ")" }) : null,
          h("p", { class: "row" },
            h("a", { href: p.join_url, target: "_blank", rel: "noopener" }, "Join"),
            h("a", { href: p.login_url, target: "_blank", rel: "noopener" }, "Log in"))),
        data.rewards.length ? h("section", {}, h("h3", { text: "Rewards" }),
          h("ul", {}, data.rewards.map(function (r) { return h("li", {}, r.name, " ", h("span", { class: "muted", text: "· " + number(r.points_cost) + " points" })); }))) : null
      ];
    }

    memberView(data) {
      var self = this;
      var points = data.points, tier = data.tier, next = data.next_reward;
      var soon = (points.expiring_soon || [])[0];
      var view = [
        h("section", {},
          h("p", {}, "Hello" + (data.member.first_name ? ", " + data.member.first_name : "") + "!"),
          h("div", { class: "big" }, number(points.available), h("span", { class: "muted", text: " points to spend" })),
          points.pending ? h("p", { class: "muted", text: number(points.pending) + " more on the way (pending)" }) : null,
          soon ? h("p", { class: "muted", text: number(soon.points) + " expire on " + day(soon.expires_at) }) : null)
      ];
      if (tier) {
        view.push(h("section", {}, h("h3", { text: "Your tier: " + tier.name }),
          tier.progress ? h("p", { class: "muted", text: tier.progress }) : null));
      }
      if (next) {
        view.push(h("section", {}, h("h3", { text: "Next reward: " + next.name }),
          h("div", { class: "bar", role: "progressbar", "aria-label": "Progress to " + next.name, "aria-valuemin": "0",
            "aria-valuemax": "100", "aria-valuenow": String(next.progress_percent) },
            h("span", { style: "width:" + next.progress_percent + "%" })),
          h("p", { class: "muted", text: number(next.points_short) + " points to go" })));
      }
      var affordable = data.rewards.filter(function (r) { return r.redeemable; });
      view.push(h("section", {}, h("h3", { text: "Redeem" }), affordable.length ?
        h("ul", {}, affordable.map(function (r) { return self.rewardItem(r); })) :
        h("p", { class: "muted", text: "Nothing to redeem yet." })));
      if (data.coupons.length) {
        view.push(h("section", {}, h("h3", { text: "Your coupons" }), h("ul", {}, data.coupons.map(function (c) {
          return h("li", {}, self.couponBox(c.code), " ", h("span", { class: "muted", text: c.reward + (c.used ? " · used" : " · until " + day(c.expires_at)) }));
        }))));
      }
      view.push(h("section", {}, h("h3", { text: "Refer a friend" }),
        h("p", { class: "muted", text: "Share your link: you both earn when they order." }),
        h("p", { class: "row" }, h("a", { href: data.referral_link, target: "_blank", rel: "noopener", text: data.referral_link }),
          h("button", { type: "button", onclick: function () { self.copy(data.referral_link, "Link copied."); } }, "Copy link"),
          navigator.share ? h("button", { type: "button", onclick: function () { navigator.share({ url: data.referral_link }).catch(function () {}); } }, "Share") : null)));
      if (data.for_you && data.for_you.length) {
        view.push(h("section", {}, h("h3", { text: "Picked for you" }), h("ul", {}, data.for_you.map(function (p) {
          return h("li", {}, p.url ? h("a", { href: p.url, text: p.name }) : p.name);
        }))));
      }
      if (data.recent.length) {
        view.push(h("section", {}, h("h3", { text: "Recent activity" }), h("ul", {}, data.recent.map(function (e) {
          return h("li", { class: "row" }, h("span", { text: e.description }), h("span", { class: "muted", text: (e.points > 0 ? "+" : "") + number(e.points) }));
        }))));
      }
      view.push(h("p", {}, h("a", { href: data.portal_url, target: "_blank", rel: "noopener" }, "All of your account")));
      return view;
    }

    rewardItem(reward) {
      var self = this;
      var item = h("li", { class: "row" });
      var idle = function () {
        item.textContent = "";
        append(item, [h("span", {}, reward.name, h("span", { class: "muted", text: " · " + number(reward.points_cost) + " points" })),
          h("button", { type: "button", onclick: confirm }, "Redeem")]);
      };
      var key = null; // one Idempotency-Key per redemption: a retry after a lost answer spends nothing twice
      var confirm = function () {
        item.textContent = "";
        key = key || uuid();
        var yes = h("button", { type: "button", class: "primary", onclick: function () { redeem(yes); } }, "Spend " + number(reward.points_cost) + " points");
        append(item, [h("span", { text: reward.name + "?" }), yes, h("button", { type: "button", onclick: idle }, "Cancel")]);
        yes.focus();
      };
      var redeem = function (button) {
        button.disabled = true;
        api("redemptions/", { method: "POST", token: self.token, json: { reward: reward.id }, key: key }).then(function (body) {
          key = null;
          item.textContent = "";
          append(item, [h("span", { class: "ok", text: "Your coupon: " }), self.couponBox(body.coupon.code)]);
          self.say("Redeemed " + reward.name + ". Use the code at checkout.", "ok");
          self.toggle.lastChild.textContent = number(body.points.available) + " points";
        }).catch(function (error) {
          if (error.status) key = null; // answered: the next try is a new redemption; a lost answer keeps its key
          idle(); self.say(error.message, "error");
        });
      };
      idle();
      return item;
    }

    couponBox(code) {
      var self = this;
      return h("span", {}, h("code", { class: "coupon", text: code }), " ",
        h("button", { type: "button", "aria-label": "Copy code " + code, onclick: function () { self.copy(code, "Code copied."); } }, "Copy"));
    }

    copy(text, done) {
      var self = this;
      var fallback = function () { self.say(text, "ok"); };
      if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(function () { self.say(done, "ok"); }, fallback);
      else fallback();
    }

    earnView(data) {
      if (!data.ways_to_earn || !data.ways_to_earn.length) return null;
      return h("section", {}, h("h3", { text: "Ways to earn" }), h("ul", {}, data.ways_to_earn.map(function (way) {
        return h("li", {}, way.headline, way.conditions.length ? h("span", { class: "muted", text: " (" + way.conditions.join(", ") + ")" }) : null);
      })));
    }
  }

  // --- <loyalty-stars>: every one on the page in one request -----------------------------------------
  var pendingStars = [];
  function askStars() {
    var elements = pendingStars; pendingStars = [];
    var skus = Array.from(new Set(elements.map(function (el) { return el.getAttribute("sku"); }).filter(Boolean)));
    for (var i = 0; i < skus.length; i += 100) {
      (function (chunk) {
        api("stars/?" + chunk.map(function (s) { return "sku=" + encodeURIComponent(s); }).join("&")).then(function (body) {
          elements.forEach(function (el) { if (body.results[el.getAttribute("sku")]) el.show(body.results[el.getAttribute("sku")]); });
        }).catch(function () {});
      })(skus.slice(i, i + 100));
    }
  }

  class LoyaltyStars extends HTMLElement {
    connectedCallback() {
      if (!pendingStars.length) setTimeout(askStars, 0);
      pendingStars.push(this);
    }
    show(summary) {
      var root = shadow(this, ":host{display:inline-block}");
      if (!summary.count) { root.appendChild(h("span", { class: "muted", text: "No reviews yet" })); return; }
      var label = "Rated " + summary.average + " out of 5, " + number(summary.count) + (summary.count === 1 ? " review" : " reviews");
      root.appendChild(h("span", { role: "img", "aria-label": label },
        h("span", { class: "stars", "aria-hidden": "true", text: starsText(summary.average) }),
        h("span", { class: "muted", "aria-hidden": "true", text: " " + summary.average + " (" + number(summary.count) + ")" })));
    }
  }

  // --- <loyalty-reviews> -----------------------------------------------------------------------------
  var REVIEWS_CSS = [
    ":host{display:block}.summary{display:flex;gap:1.5em;flex-wrap:wrap;align-items:center}.avg{font-size:2.2em;font-weight:700}",
    ".dist li{display:grid;grid-template-columns:4.5em 10em 3em;gap:.5em;align-items:center;margin:.1em 0}",
    ".controls{display:flex;gap:1em;flex-wrap:wrap;align-items:end;margin:1em 0}.controls label{display:flex;flex-direction:column;font-size:.9em}",
    "article{border-top:1px solid #dcdcde;padding:.8em 0}.photos{display:flex;gap:.4em;flex-wrap:wrap;margin:.4em 0}",
    ".photos button{padding:0;border:0;background:none}.photos img{width:5em;height:5em;object-fit:cover;border-radius:4px}",
    ".reply{background:#f3f4f5;padding:.5em .8em;border-radius:6px}",
    "dialog{border:0;border-radius:var(--_r);padding:.8em;max-width:92vw}dialog img{max-width:86vw;max-height:78vh;display:block}",
    "dialog::backdrop{background:rgba(0,0,0,.7)}form label{display:block;margin:.6em 0 .2em;font-weight:600}",
    "form input[type=text],form textarea{width:100%;padding:.45em;border:1px solid #8c8f94;border-radius:4px}",
    "fieldset{border:0;padding:0;margin:.6em 0}legend{font-weight:600}.rate{display:flex;gap:.2em;flex-direction:row-reverse;justify-content:flex-end}",
    ".rate input{position:absolute;opacity:0;width:1px;height:1px}.rate label{font-size:1.7em;color:#8c8f94;margin:0;cursor:pointer;font-weight:400}",
    ".rate input:checked~label,.rate label:hover,.rate label:hover~label{color:#8a5300}.rate input:focus-visible+label{outline:3px solid var(--_a)}"
  ].join("");

  class LoyaltyReviews extends HTMLElement {
    static get observedAttributes() { return ["sku", "customer-token"]; }
    connectedCallback() { this.sort = "relevant"; this.rating = ""; this.withPhotos = false; this.load(1); }
    attributeChangedCallback() { if (this.isConnected && this.body) this.load(1); }
    get token() {
      var launcher = document.querySelector("loyalty-launcher[customer-token]");
      return this.getAttribute("customer-token") || (launcher ? launcher.getAttribute("customer-token") : "");
    }

    load(page) {
      var self = this;
      var query = "?page=" + page + "&page_size=5&sort=" + this.sort + (this.rating ? "&rating=" + this.rating : "") +
        (this.withPhotos ? "&with_photos=true" : "");
      var path = "products/" + encodeURIComponent(this.getAttribute("sku")) + "/reviews/" + query;
      api(path, { token: this.token }).catch(function (error) {
        if (error.status === 401 && self.token) return api(path); // an expired token: show what guests see
        throw error;
      }).then(function (body) {
        self.page = page;
        if (page > 1 && self.list) { self.more(body); return; }
        self.render(body);
      }).catch(function (error) {
        var root = shadow(self, REVIEWS_CSS);
        root.appendChild(h("p", { class: "muted", text: error.status === 404 ? "No reviews yet." : "Reviews are unavailable." }));
      });
    }

    render(body) {
      var self = this;
      this.body = body;
      var focused = this.shadowRoot && this.shadowRoot.activeElement;
      var focusKey = focused ? focused.getAttribute("data-focus") : null;
      var root = shadow(this, REVIEWS_CSS);
      var s = body.summary;
      var wrap = h("section", { "aria-label": "Reviews of " + body.product.name });
      append(wrap, h("h2", { text: "Reviews" }));
      append(wrap, h("div", { class: "summary" },
        h("div", {}, h("div", { class: "avg", text: s.average || "–" }),
          h("div", { class: "stars", role: "img", "aria-label": s.count ? "Rated " + s.average + " out of 5" : "No rating yet", text: starsText(s.average) }),
          h("div", { class: "muted", text: number(s.count) + (s.count === 1 ? " review" : " reviews") })),
        h("ul", { class: "dist", "aria-label": "Reviews per star" }, [5, 4, 3, 2, 1].map(function (n) {
          var count = s.distribution[String(n)] || 0, percent = s.count ? Math.round(100 * count / s.count) : 0;
          return h("li", {}, h("span", { text: n + (n === 1 ? " star" : " stars") }),
            h("span", { class: "bar", role: "img", "aria-label": percent + "%" }, h("span", { style: "width:" + percent + "%" })),
            h("span", { class: "muted", text: number(count) }));
        }))));
      append(wrap, this.writeView(body.viewer));
      var sort = h("select", { "data-focus": "sort", onchange: function () { self.sort = sort.value; self.load(1); } },
        [["relevant", "Most relevant"], ["newest", "Newest"], ["helpful", "Most helpful"], ["highest", "Highest rated"], ["lowest", "Lowest rated"]]
          .map(function (o) { return h("option", { value: o[0], selected: self.sort === o[0] }, o[1]); }));
      var rating = h("select", { "data-focus": "rating", onchange: function () { self.rating = rating.value; self.load(1); } },
        [["", "All ratings"], ["5", "5 stars"], ["4", "4 stars"], ["3", "3 stars"], ["2", "2 stars"], ["1", "1 star"]]
          .map(function (o) { return h("option", { value: o[0], selected: self.rating === o[0] }, o[1]); }));
      var photos = h("input", { type: "checkbox", "data-focus": "photos", checked: this.withPhotos, onchange: function () { self.withPhotos = photos.checked; self.load(1); } });
      append(wrap, h("div", { class: "controls" }, h("label", {}, "Sort by", sort), h("label", {}, "Show", rating),
        h("label", { style: "flex-direction:row;gap:.3em;align-items:center" }, photos, "With photos")));
      this.status = h("p", { role: "status", "aria-live": "polite" });
      append(wrap, this.status);
      this.list = h("div", {});
      append(wrap, this.list);
      this.moreButton = h("button", { type: "button", onclick: function () { self.load(self.page + 1); } }, "More reviews");
      append(wrap, this.moreButton);
      this.more(body);
      append(wrap, this.questionsView(body));
      this.lightbox = h("dialog", { "aria-label": "Photo", onclick: function (event) { if (event.target === self.lightbox) self.lightbox.close(); } });
      root.appendChild(wrap);
      root.appendChild(this.lightbox);
      if (focusKey) { var again = root.querySelector('[data-focus="' + focusKey + '"]'); if (again) again.focus(); }
    }

    more(body) {
      var self = this;
      if (!body.results.length && !this.list.children.length) append(this.list, h("p", { class: "muted", text: "No reviews match." }));
      body.results.forEach(function (review) { append(self.list, self.reviewView(review, body.viewer)); });
      this.moreButton.hidden = !body.next;
    }

    reviewView(review, viewer) {
      var self = this;
      var voted = viewer.voted.indexOf(review.id) >= 0;
      var helpful = h("button", { type: "button", disabled: !viewer.signed_in || voted, "aria-pressed": String(voted),
        onclick: function () {
          helpful.disabled = true;
          api("reviews/" + review.id + "/helpful/", { method: "POST", token: self.token, json: {} }).then(function (body) {
            helpful.setAttribute("aria-pressed", "true");
            helpful.textContent = "Helpful (" + number(body.helpful_count) + ")";
          }).catch(function (error) { helpful.disabled = false; self.status.textContent = error.message; });
        } }, "Helpful (" + number(review.helpful_count) + ")");
      return h("article", {},
        h("div", { class: "stars", role: "img", "aria-label": review.rating + " out of 5 stars", text: starsText(review.rating) }),
        h("h3", { text: review.title }),
        h("p", { class: "muted" }, review.author, review.verified_buyer ? " · Verified buyer" : "", " · ", day(review.published_at),
          review.rewarded ? " · earned points for this review" : ""),
        h("p", { text: review.text }),
        review.photos.length ? h("div", { class: "photos" }, review.photos.map(function (photo, index) {
          return h("button", { type: "button", "aria-label": "Photo " + (index + 1) + " of " + review.title + ", larger",
            onclick: function () { self.zoom(photo.url, review.title); } },
            h("img", { src: photo.thumbnail_url, alt: "", loading: "lazy", width: "80", height: "80" }));
        })) : null,
        review.staff_reply ? h("p", { class: "reply" }, h("strong", { text: "The shop replied: " }), review.staff_reply) : null,
        h("p", {}, helpful));
    }

    zoom(url, title) {
      var self = this;
      this.lightbox.textContent = "";
      append(this.lightbox, [h("img", { src: url, alt: "Photo from the review " + title }),
        h("p", {}, h("button", { type: "button", autofocus: true, onclick: function () { self.lightbox.close(); } }, "Close"))]);
      this.lightbox.showModal();
    }

    writeView(viewer) {
      var self = this;
      var section = h("section", {});
      if (!viewer.signed_in || !viewer.can_review) {
        append(section, h("p", { class: "muted", text: viewer.why_not }));
        return section;
      }
      var opener = h("button", { type: "button", class: "primary", "aria-expanded": "false", onclick: function () {
        var open = opener.getAttribute("aria-expanded") !== "true";
        opener.setAttribute("aria-expanded", String(open));
        form.hidden = !open;
        if (open) form.querySelector("input").focus();
      } }, viewer.has_reviewed ? "Edit your review" : "Write a review");
      append(section, opener);
      if (viewer.has_reviewed) append(section, h("p", { class: "muted", text: "Writing again replaces your review." }));
      var uid = "r" + Math.random().toString(36).slice(2, 8);
      var errors = {};
      function field(name, control, label) {
        errors[name] = h("p", { class: "error", id: uid + "-" + name + "-error" });
        control.setAttribute("aria-describedby", uid + "-" + name + "-error");
        return [label, control, errors[name]];
      }
      var stars = h("div", { class: "rate" });
      [5, 4, 3, 2, 1].forEach(function (n) {
        append(stars, [h("input", { type: "radio", name: "rating", value: String(n), id: uid + "-s" + n }),
          h("label", { for: uid + "-s" + n, title: n + " stars" }, h("span", { "aria-hidden": "true", text: "★" }), h("span", { class: "sr", text: n + (n === 1 ? " star" : " stars") }))]);
      });
      errors.rating = h("p", { class: "error", id: uid + "-rating-error" });
      var form = h("form", { novalidate: true, hidden: true, "aria-label": "Write a review" },
        h("fieldset", { "aria-describedby": uid + "-rating-error" }, h("legend", { text: "Your rating" }), stars), errors.rating,
        field("title", h("input", { type: "text", name: "title", id: uid + "-title", maxlength: "120", required: true }), h("label", { for: uid + "-title", text: "Title" })),
        field("text", h("textarea", { name: "text", id: uid + "-text", rows: "4", maxlength: "5000", required: true }), h("label", { for: uid + "-text", text: "Your review" })),
        field("photos", h("input", { type: "file", name: "photos", id: uid + "-photos", accept: "image/jpeg,image/png,image/webp", multiple: true }), h("label", { for: uid + "-photos", text: "Photos (up to 5)" })),
        h("button", { type: "submit", class: "primary" }, "Send review"));
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        Object.keys(errors).forEach(function (k) { errors[k].textContent = ""; });
        var button = form.querySelector("button[type=submit]");
        button.disabled = true;
        api("products/" + encodeURIComponent(self.getAttribute("sku")) + "/reviews/", { method: "POST", token: self.token, form: new FormData(form) })
          .then(function (body) {
            section.textContent = "";
            var thanks = h("p", { class: "ok", role: "status", tabindex: "-1", text: body.message });
            append(section, thanks);
            thanks.focus();
          }).catch(function (error) {
            button.disabled = false;
            var named = Object.keys(error.fields || {});
            named.forEach(function (name) { (errors[name] || errors.text).textContent = [].concat(error.fields[name]).join(" "); });
            if (!named.length) self.status.textContent = error.message;
            var first = named.length && form.querySelector("[name=" + named[0] + "]");
            if (first) first.focus();
          });
      });
      append(section, form);
      return section;
    }

    questionsView(body) {
      var self = this;
      var section = h("section", {}, h("h3", { text: "Questions and answers" }));
      if (!body.questions.length) append(section, h("p", { class: "muted", text: "No questions yet." }));
      append(section, h("ul", {}, body.questions.map(function (q) {
        return h("li", {}, h("strong", { text: "Q: " + q.text }), h("ul", {}, q.answers.map(function (a) {
          return h("li", {}, "A: " + a.text, a.by_staff ? h("span", { class: "muted", text: " · the shop" }) :
            a.verified_buyer ? h("span", { class: "muted", text: " · a buyer" }) : null);
        })));
      })));
      if (body.viewer.signed_in) {
        var uid = "q" + Math.random().toString(36).slice(2, 8);
        var text = h("textarea", { id: uid, name: "text", rows: "2", maxlength: "1000", "aria-describedby": uid + "-error" });
        var error = h("p", { class: "error", id: uid + "-error" });
        var form = h("form", { novalidate: true }, h("label", { for: uid, text: "Ask a question" }), text, error,
          h("button", { type: "submit" }, "Ask"));
        form.addEventListener("submit", function (event) {
          event.preventDefault();
          error.textContent = "";
          api("products/" + encodeURIComponent(self.getAttribute("sku")) + "/questions/", { method: "POST", token: self.token, json: { text: text.value } })
            .then(function (answer) {
              var thanks = h("p", { class: "ok", role: "status", tabindex: "-1", text: answer.message });
              form.replaceWith(thanks);
              thanks.focus();
            })
            .catch(function (problem) { error.textContent = [].concat((problem.fields && problem.fields.text) || problem.message).join(" "); text.focus(); });
        });
        append(section, form);
      }
      return section;
    }
  }

  customElements.define("loyalty-launcher", LoyaltyLauncher);
  customElements.define("loyalty-stars", LoyaltyStars);
  customElements.define("loyalty-reviews", LoyaltyReviews);
})();
