/* The alerts page: the notifier's groups (Alertmanager API v2 /alerts/groups) with each
   alert's runbook, silence action and history; pending alerts (Prometheus /api/v1/alerts);
   silences, created and expired through the staff-only proxy.
   Each firing alert row's <span class="ack-slot" data-fingerprint=…> holds its Acknowledge
   action, or "acknowledged by X at T" once someone took it (the acknowledgements of the
   episodes firing now come with every draw, from monitoring.acknowledge's records). */
(function () {
  "use strict";
  var D = window.DASHBOARD;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function csrf() {
    var m = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
    return m ? decodeURIComponent(m[1]) : "";
  }
  function send(method, path, body) {
    return fetch(D.api + path, {
      method: method, credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf(), Accept: "application/json"},
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (r) {
      return r.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
        if (!r.ok) throw new Error((data && data.error) || (typeof data === "string" ? data : r.status + " " + r.statusText));
        return data;
      });
    });
  }
  function when(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleString();
  }
  function labelText(labels, skip) {
    return Object.keys(labels).filter(function (k) { return skip.indexOf(k) < 0; }).sort()
      .map(function (k) { return k + '="' + labels[k] + '"'; }).join(", ");
  }

  // -- silences -----------------------------------------------------------------------------
  var form = document.getElementById("silence-form");
  var formStatus = document.getElementById("silence-status");

  function parseMatchers(text) {
    // name="value", name=~"re", name!="v", name!~"re"; quotes optional.
    var out = [], re = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("((?:[^"\\]|\\.)*)"|[^,]*)\s*(,|$)/y, m;
    while (re.lastIndex < text.length && (m = re.exec(text))) {
      var value = m[4] !== undefined ? m[4].replace(/\\(.)/g, "$1") : m[3].trim();
      out.push({name: m[1], value: value, isRegex: m[2].indexOf("~") >= 0, isEqual: m[2][0] !== "!"});
      if (!m[5]) break;
    }
    if (!out.length || re.lastIndex < text.trim().length && !m) throw new Error("matchers: name=\"value\", separated by commas");
    return out;
  }
  function matcherText(ms) {
    return ms.map(function (m) {
      return m.name + (m.isEqual === false ? "!" : "") + (m.isRegex ? "~" : "=") + '"' + m.value + '"';
    }).join(", ");
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var matchers;
    try { matchers = parseMatchers(form.matchers.value); } catch (e) { formStatus.textContent = e.message; return; }
    formStatus.textContent = "creating…";
    send("POST", "silences", {matchers: matchers, duration_s: Number(form.duration.value), comment: form.comment.value})
      .then(function (data) {
        formStatus.textContent = "silence " + data.silenceID + " created";
        form.comment.value = "";
        return loadAll();
      }, function (err) { formStatus.textContent = "refused: " + err.message; });
  });

  function silenceFor(alert) {
    var keep = ["alertname", "instance", "job", "severity"];
    var ms = keep.filter(function (k) { return alert.labels[k] !== undefined; })
      .map(function (k) { return {name: k, value: alert.labels[k], isRegex: false, isEqual: true}; });
    form.matchers.value = matcherText(ms);
    form.comment.focus();
    form.scrollIntoView({block: "center"});
  }

  var silenceBody = document.querySelector("#silences tbody");
  function loadSilences() {
    return send("GET", "silences").then(function (list) {
      silenceBody.textContent = "";
      list.sort(function (a, b) { return (b.updatedAt || "").localeCompare(a.updatedAt || ""); });
      if (!list.length) {
        var tr = el("tr"); tr.appendChild(el("td", {colspan: "6", "class": "muted"}, "no silences")); silenceBody.appendChild(tr);
      }
      list.forEach(function (s) {
        var state = s.status.state;
        var tr = el("tr", {"data-silence": s.id, "data-state": state});
        var td = el("td"); td.appendChild(el("span", {"class": "badge st-" + state}, state)); tr.appendChild(td);
        tr.appendChild(el("td", {}, matcherText(s.matchers)));
        tr.appendChild(el("td", {}, when(s.endsAt)));
        tr.appendChild(el("td", {}, s.createdBy));
        tr.appendChild(el("td", {}, s.comment));
        var action = el("td");
        if (state !== "expired") {
          var b = el("button", {type: "button", "aria-label": "Expire silence " + matcherText(s.matchers)}, "Expire");
          b.addEventListener("click", function () {
            b.disabled = true;
            send("DELETE", "silences/" + encodeURIComponent(s.id)).then(loadAll, function (err) {
              b.disabled = false; formStatus.textContent = "expire refused: " + err.message;
            });
          });
          action.appendChild(b);
        }
        tr.appendChild(action);
        silenceBody.appendChild(tr);
      });
    }, function (err) {
      silenceBody.textContent = "";
      var tr = el("tr"); tr.appendChild(el("td", {colspan: "6", "class": "error"}, "silences unavailable: " + err.message)); silenceBody.appendChild(tr);
    });
  }

  // -- history ------------------------------------------------------------------------------
  function historyList(fp, into) {
    into.textContent = "loading…";
    return send("GET", "history/" + fp).then(function (h) {
      into.textContent = "";
      if (!h.events.length) { into.appendChild(el("li", {}, "no recorded history")); return; }
      h.events.forEach(function (e) {
        into.appendChild(el("li", {"data-kind": e.kind}, new Date(e.at_ms).toLocaleString() + ": " + eventText(e)));
      });
    }, function (err) { into.textContent = "history unavailable: " + err.message; });
  }

  function eventText(e) {
    var d = e.detail || {};
    switch (e.kind) {
      case "transition": return e.from + " → " + (e.to === "inactive" && e.from === "firing" ? "resolved" : e.to);
      case "notification": return "notified " + e.receiver + " by " + e.integration + " (" + e.alert_status + ", " + e.status + (e.error ? ": " + e.error : "") + ")";
      case "level": return "escalated to level " + e.level + " (policy " + d.policy + ")" + (d.notice ? "; customer notice: " + d.notice.title : "");
      case "action": return "automated response " + d.action + ": " + (d.ok ? "done" : "failed") + (d.text ? " (" + d.text + ")" : "");
      case "notify": return "level " + e.level + ": told " + d.receiver + (d.queued ? "" : " (not queued: " + d.error + ")");
      case "ack": return "acknowledged by " + e.by + (d.comment ? ": " + d.comment : "");
      case "end": return "escalation ended (" + d.reason + ")";
      default: return e.kind;
    }
  }

  // -- acknowledgement ----------------------------------------------------------------------
  var acks = {};  // fingerprint → the acknowledgement of its episode firing now
  function loadAcks() {
    return send("GET", "acks").then(function (data) {
      acks = {};
      data.acks.forEach(function (a) { if (!acks[a.fingerprint]) acks[a.fingerprint] = a; });
    }, function (err) { acks = {}; acksError = err.message; });
  }
  var acksError = "";

  function showAcked(slot, a) {
    slot.textContent = "";
    slot.dataset.acked = "true";
    var text = "acknowledged by " + a.by + " at " + new Date(a.at_ms).toLocaleString() + (a.comment ? ": " + a.comment : "");
    slot.appendChild(el("span", {"class": "badge st-acked", tabindex: "-1"}, text));
  }

  function ackButton(slot, a) {
    slot.textContent = "";
    var open = el("button", {type: "button", "aria-label": "Acknowledge " + a.labels.alertname, "aria-expanded": "false"}, "Acknowledge…");
    open.addEventListener("click", function () { ackForm(slot, a, open); });
    slot.appendChild(open);
  }

  // A small inline form: the comment is optional; Enter acknowledges, Escape cancels.
  function ackForm(slot, a, opener) {
    opener.setAttribute("aria-expanded", "true");
    opener.hidden = true;
    var f = el("form", {"class": "ack-form"});
    var label = el("label", {}, "Comment ");
    var comment = el("input", {name: "comment", maxlength: "1000", placeholder: "optional", autocomplete: "off"});
    label.appendChild(comment);
    f.appendChild(label);
    f.appendChild(el("button", {type: "submit"}, "Acknowledge"));
    var cancel = el("button", {type: "button"}, "Cancel");
    f.appendChild(cancel);
    var status = el("span", {"class": "ack-status", role: "status"});
    f.appendChild(status);
    function close() { f.remove(); opener.hidden = false; opener.setAttribute("aria-expanded", "false"); opener.focus(); }
    cancel.addEventListener("click", close);
    f.addEventListener("keydown", function (ev) { if (ev.key === "Escape") close(); });
    f.addEventListener("submit", function (ev) {
      ev.preventDefault();
      status.textContent = "acknowledging…";
      f.querySelectorAll("button, input").forEach(function (n) { n.disabled = true; });
      send("POST", "alerts/" + a.fingerprint + "/ack", {comment: comment.value}).then(function (data) {
        acks[a.fingerprint] = data.ack;
        // The same alert in another group's row (one per receiver) is acknowledged too.
        document.querySelectorAll('.ack-slot[data-fingerprint="' + a.fingerprint + '"]').forEach(function (other) {
          if (other.querySelector(".ack-form") && other !== slot) return;  // someone typing there
          showAcked(other, data.ack);
        });
        slot.querySelector(".badge").focus();
      }, function (err) {
        f.querySelectorAll("button, input").forEach(function (n) { n.disabled = false; });
        status.textContent = "refused: " + err.message;
        status.setAttribute("role", "alert");
      });
    });
    slot.appendChild(f);
    comment.focus();
  }

  function fillAckSlot(slot, a, state) {
    if (acks[a.fingerprint]) showAcked(slot, acks[a.fingerprint]);
    else if (state === "active" || state === "suppressed") ackButton(slot, a);  // firing, silenced or not
  }

  // An alert's fingerprint, as Prometheus and Alertmanager compute it (and the monitor's state
  // file keys it): FNV-1a 64 over the label pairs sorted by name, each name and value followed
  // by the byte 0xff. /api/v1/alerts gives none; the history needs it.
  function fingerprint(labels) {
    var h = 0xcbf29ce484222325n, prime = 0x100000001b3n, mask = (1n << 64n) - 1n;
    var encoder = new TextEncoder();
    function eat(text) {
      encoder.encode(text).forEach(function (b) { h = ((h ^ BigInt(b)) * prime) & mask; });
      h = ((h ^ 0xffn) * prime) & mask;
    }
    Object.keys(labels).sort().forEach(function (k) { eat(k); eat(labels[k]); });
    return h.toString(16).padStart(16, "0");
  }
  D.fingerprint = fingerprint;

  // -- alert rows ---------------------------------------------------------------------------
  function alertRow(a, state) {
    var sev = a.labels.severity || "none";
    var row = el("li", {"class": "alert-row sev-" + sev + "-row", "data-alertname": a.labels.alertname, "data-fingerprint": a.fingerprint || ""});
    var head = el("div", {"class": "head"});
    head.appendChild(el("span", {"class": "badge sev-" + sev}, sev));
    head.appendChild(el("span", {"class": "badge st-" + state}, state));
    head.appendChild(el("strong", {}, a.labels.alertname));
    head.appendChild(el("span", {}, (a.annotations && a.annotations.summary) || ""));
    head.appendChild(el("span", {"class": "muted"}, "since " + when(a.startsAt || a.activeAt)));
    row.appendChild(head);
    row.appendChild(el("div", {"class": "labels"}, labelText(a.labels, ["alertname", "severity"])));
    var actions = el("div", {"class": "actions"});
    var href = D.runbookHref(a.annotations && a.annotations.runbook_url);
    if (href) actions.appendChild(el("a", {href: href}, "Runbook"));
    var silence = el("button", {type: "button"}, "Silence…");
    silence.addEventListener("click", function () { silenceFor(a); });
    actions.appendChild(silence);
    var slot = el("span", {"class": "ack-slot", "data-fingerprint": a.fingerprint || ""});
    if (a.fingerprint) fillAckSlot(slot, a, state);
    actions.appendChild(slot);
    if (a.fingerprint) {
      var hist = el("button", {type: "button", "aria-expanded": "false"}, "History");
      var list = el("ol", {"class": "history", hidden: ""});
      hist.addEventListener("click", function () {
        var open = list.hidden;
        list.hidden = !open;
        hist.setAttribute("aria-expanded", String(open));
        if (open) historyList(a.fingerprint, list);
      });
      actions.appendChild(hist);
      row.appendChild(actions);
      row.appendChild(list);
    } else {
      row.appendChild(actions);
    }
    return row;
  }

  var groupsBox = document.getElementById("groups");
  function loadGroups() {
    acksError = "";
    return Promise.all([send("GET", "alerts/groups"), loadAcks()]).then(function (got) {
      var groups = got[0];
      groupsBox.textContent = "";
      if (acksError) groupsBox.appendChild(el("p", {"class": "error"}, "acknowledgements unavailable: " + acksError));
      if (!groups.length) groupsBox.appendChild(el("p", {"class": "muted"}, "no active alerts"));
      groups.forEach(function (g) {
        var box = el("section", {"class": "group", "data-receiver": g.receiver.name});
        box.appendChild(el("h3", {}, (labelText(g.labels, []) || "(all)") + " → " + g.receiver.name + " (" + g.alerts.length + ")"));
        var list = el("ul", {"class": "alert-list"});
        g.alerts.forEach(function (a) { list.appendChild(alertRow(a, a.status.state)); });
        box.appendChild(list);
        groupsBox.appendChild(box);
      });
    }, function (err) {
      groupsBox.textContent = "";
      groupsBox.appendChild(el("p", {"class": "error"}, "alert groups unavailable: " + err.message));
    }).then(function () { groupsBox.setAttribute("aria-busy", "false"); });
  }

  var pendingList = document.getElementById("pending");
  function loadPending() {
    return D.getJSON("v1/alerts").then(function (body) {
      pendingList.textContent = "";
      var pending = body.data.alerts.filter(function (a) { return a.state === "pending"; });
      if (!pending.length) pendingList.appendChild(el("li", {"class": "muted"}, "none pending"));
      pending.forEach(function (a) {
        a.fingerprint = fingerprint(a.labels);
        pendingList.appendChild(alertRow(a, "pending"));
      });
    }, function (err) {
      pendingList.textContent = "";
      pendingList.appendChild(el("li", {"class": "error"}, "pending alerts unavailable: " + err.message));
    }).then(function () { pendingList.setAttribute("aria-busy", "false"); });
  }

  // A link from a notification, `alerts/#ack=<fingerprint>` (Alertmanager's Slack and email
  // messages carry one: its templates cannot sign the one-click link), opens that alert's
  // acknowledgement form once it is drawn, or says why not.
  function followAckLink() {
    var m = /^#ack=([0-9a-f]{16})$/.exec(location.hash);
    if (!m) return;
    history.replaceState(null, "", location.pathname + location.search);  // once, not per draw
    var slot = document.querySelector('#groups .ack-slot[data-fingerprint="' + m[1] + '"]');
    var note = document.getElementById("ack-link");
    var row = slot && slot.closest(".alert-row");
    var opener = slot && slot.querySelector("button[aria-expanded]");
    if (row) {
      row.classList.add("linked");
      row.scrollIntoView({block: "center"});
    }
    if (opener) { opener.click(); return; }
    if (note) {
      note.textContent = slot && slot.dataset.acked
        ? "This alert is already acknowledged."
        : "That alert is not firing now: nothing to acknowledge.";
      note.hidden = false;
    }
  }

  function loadAll() {
    return Promise.all([loadGroups(), loadPending(), loadSilences()]).then(function () {
      followAckLink();
      document.documentElement.dataset.alertsDrawn = String(Number(document.documentElement.dataset.alertsDrawn || 0) + 1);
      var updated = document.getElementById("updated");
      if (updated) updated.textContent = "updated " + new Date().toLocaleTimeString();
    });
  }
  D.loadAlerts = loadAll;
  loadAll();
  var live = document.getElementById("live");
  setInterval(function () {
    // An open history, a half-typed silence or acknowledgement is not redrawn away.
    if (live.checked && !document.hidden && !document.querySelector(".history:not([hidden]), .ack-form") && document.activeElement.form !== form) loadAll();
  }, D.refreshSeconds * 1000);
})();
