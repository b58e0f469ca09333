/* The dashboard's panels: stat numbers (instant queries), charts (range queries, uPlot) and
   component health, all through the staff-only proxy at /dashboard/api/v1/… (the browser never
   holds the monitoring token). Live refresh re-reads the numbers and only the newest points of
   each chart, so keeping a page open costs the monitor little (docs/dashboard.md).
   When every panel has drawn (data, "no data" or an error), <html data-drawn="ms since
   navigation"> is set: the browser tests and bench/bench_dashboard.py wait for it. */
(function () {
  "use strict";
  var D = window.DASHBOARD;
  var COLOURS = ["#1f5fbf", "#c0262d", "#a15c00", "#1b7f3b", "#7b3fb2", "#0e7c86", "#6b7280"];
  var MAX_POINTS = 240;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A series' name: a legend "{{label}} text" is filled from the series' labels (Grafana's
  // notation); a bare label name is that label's value; anything else is the name itself.
  function seriesName(legend, metric) {
    if (legend.indexOf("{{") >= 0) {
      return legend.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, function (_, k) { return metric[k] || ""; });
    }
    return metric[legend] !== undefined ? metric[legend] : (legend || "value");
  }

  function csrf() {
    var m = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
    return m ? decodeURIComponent(m[1]) : "";
  }

  // Every Prometheus API call made in one turn of the event loop goes to the server as one
  // batch (POST api/batch), answered in order: a page draw or a refresh is one round trip.
  var queue = [];
  function getJSON(path, params) {
    return new Promise(function (resolve, reject) {
      queue.push({path: path, params: params || {}, resolve: resolve, reject: reject});
      if (queue.length === 1) setTimeout(flush, 0);
    });
  }
  function flush() {
    var batch = queue;
    queue = [];
    fetch(D.api + "batch", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf()},
      body: JSON.stringify({requests: batch.map(function (b) { return {path: b.path, params: b.params}; })}),
    }).then(function (r) {
      return r.json().catch(function () { return {error: r.status + " " + r.statusText}; }).then(function (body) {
        if (!r.ok || !body.results) throw new Error(body.error || r.status + " " + r.statusText);
        body.results.forEach(function (res, i) {
          if (res.status === "error") batch[i].reject(new Error(res.error));
          else batch[i].resolve(res);
        });
      });
    }).catch(function (err) { batch.forEach(function (b) { b.reject(err); }); });
  }
  D.getJSON = getJSON;

  // -- formatting ---------------------------------------------------------------------------
  function bytes(v) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : v.toFixed(0)) + " " + units[i];
  }
  function num(v) {
    var a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
    if (a >= 100 || Number.isInteger(v)) return v.toFixed(0);
    if (a >= 1) return v.toFixed(1);
    return v.toFixed(2);
  }
  function age(s) {
    if (s < 120) return s.toFixed(0) + " s ago";
    if (s < 7200) return (s / 60).toFixed(0) + " min ago";
    return (s / 3600).toFixed(1) + " h ago";
  }
  function format(v, unit) {
    if (v === null || v === undefined || isNaN(v)) return "no data";
    switch (unit) {
      case "%": return v.toFixed(1) + " %";
      case "ms": return num(v) + " ms";
      case "bytes": return bytes(v);
      case "bytes/s": return bytes(v) + "/s";
      case "up": return v >= 1 ? "up" : "down";
      case "onoff": return v >= 1 ? "on" : "off";
      case "age": return age(v);
      case "money": return num(v);
      case "count": case "": return num(v);
      default: return num(v) + " " + unit;
    }
  }
  D.format = format;

  function stateOf(panel, v) {
    if (v === null || isNaN(v)) return "nodata";
    var bad = function (limit) { return limit !== null && (panel.low_is_bad ? v < limit : v >= limit); };
    if (bad(panel.crit)) return "crit";
    if (bad(panel.warn)) return "warn";
    return "ok";
  }

  // -- the range ----------------------------------------------------------------------------
  var rangeSelect = document.getElementById("range");
  function rangeSeconds() {
    return rangeSelect ? Number(rangeSelect.value) : 3600;
  }
  if (rangeSelect) {
    var wanted = new URLSearchParams(location.search).get("range") || localStorage.getItem("dashboard.range") || rangeSelect.dataset.default;
    var options = Array.prototype.map.call(rangeSelect.options, function (o) { return o.value; });
    rangeSelect.value = options.indexOf(String(wanted)) >= 0 ? String(wanted) : options[Math.min(1, options.length - 1)];
    rangeSelect.addEventListener("change", function () {
      localStorage.setItem("dashboard.range", rangeSelect.value);
      var params = new URLSearchParams(location.search);
      params.set("range", rangeSelect.value);
      history.replaceState(null, "", "?" + params);
      charts.forEach(function (c) { c.load(); });
    });
  }
  function stepFor(range) {
    // At most MAX_POINTS points, on a multiple of 15 s (the scrape and evaluation interval).
    return Math.max(15, Math.ceil(range / MAX_POINTS / 15) * 15);
  }

  // -- panels -------------------------------------------------------------------------------
  function panelNode(p) {
    var node = el("article", {"class": "panel " + p.kind, id: "panel-" + p.id, "data-panel": p.id, "aria-busy": "true"});
    node.appendChild(el("h2", {}, p.title));
    return node;
  }

  function instant(query) {
    return getJSON("v1/query", {query: query}).then(function (body) { return body.data.result; });
  }

  function Stat(p, node) {
    var value = el("div", {"class": "value"}, "…");
    node.appendChild(value);
    if (p.note) node.appendChild(el("p", {"class": "note"}, p.note));
    this.load = function () {
      return instant(p.queries[0].expr).then(function (result) {
        var v = result.length ? parseFloat(result[0].value[1]) : null;
        value.textContent = format(v, p.unit);
        node.className = "panel stat state-" + stateOf(p, v);
        node.dataset.state = stateOf(p, v);
      }, function (err) {
        value.textContent = "error";
        node.className = "panel stat state-nodata";
        node.dataset.state = "error";
        node.title = err.message;
      }).then(function () { node.setAttribute("aria-busy", "false"); });
    };
  }

  function Health(p, node) {
    var list = el("ul", {"class": "tiles"});
    node.appendChild(list);
    this.load = function () {
      return Promise.all(p.queries.map(function (q) {
        return instant(q.expr).then(function (result) {
          return result.map(function (s) {
            return {name: seriesName(q.legend, s.metric), up: parseFloat(s.value[1]) >= 1};
          });
        }, function (err) { return [{name: q.legend.replace(/\{\{.*?\}\}\s*/g, ""), up: false, error: err.message}]; });
      })).then(function (groups) {
        list.textContent = "";
        var tiles = [].concat.apply([], groups);
        if (!tiles.length) list.appendChild(el("li", {"class": "tile nodata"}, "no data"));
        tiles.forEach(function (t) {
          list.appendChild(el("li", {"class": "tile " + (t.up ? "ok" : t.error ? "nodata" : "crit"), "data-state": t.up ? "ok" : t.error ? "error" : "crit", title: t.error || ""},
            t.name + ": " + (t.up ? "up" : t.error ? "unknown" : "down")));
        });
        node.setAttribute("aria-busy", "false");
      });
    };
  }

  function Chart(p, node) {
    var box = el("div", {"class": "plot"});
    var status = el("p", {"class": "note", role: "status"});
    node.appendChild(box);
    node.appendChild(status);
    var plot = null, names = [], step = 15, data = null, self = this;

    function merge(results, start, end) {
      // One x axis (start…end by step) for every query's series; missing points are null.
      var xs = [];
      for (var t = start; t <= end; t += step) xs.push(t);
      var index = {};
      xs.forEach(function (t, i) { index[t] = i; });
      var series = [];
      results.forEach(function (r) {
        r.result.forEach(function (s) {
          var ys = new Array(xs.length).fill(null);
          s.values.forEach(function (pt) {
            var i = index[pt[0]];
            if (i !== undefined) { var v = parseFloat(pt[1]); ys[i] = isFinite(v) ? v : null; }
          });
          series.push({name: seriesName(r.legend, s.metric), ys: ys});
        });
      });
      return {xs: xs, series: series};
    }

    function fetchRange(start, end) {
      return Promise.all(p.queries.map(function (q) {
        return getJSON("v1/query_range", {query: q.expr, start: start, end: end, step: step})
          .then(function (body) { return {legend: q.legend, result: body.data.result}; });
      }));
    }

    function width() { return Math.max(200, box.clientWidth || node.clientWidth - 20); }

    function draw(merged) {
      var key = merged.series.map(function (s) { return s.name; }).join("\u0000");
      data = [merged.xs].concat(merged.series.map(function (s) { return s.ys; }));
      var points = merged.series.reduce(function (n, s) {
        return n + s.ys.filter(function (v) { return v !== null; }).length;
      }, 0);
      node.dataset.points = points;
      status.textContent = merged.series.length ? "" : "no data in this range";
      if (plot && key === names.join("\u0000")) { plot.setData(data); return; }
      if (plot) plot.destroy();
      names = merged.series.map(function (s) { return s.name; });
      var opts = {
        width: width(), height: 170,
        scales: {x: {time: true}},
        axes: [{}, {size: 72, values: function (u, vals) { return vals.map(function (v) { return format(v, p.unit); }); }}],
        series: [{}].concat(merged.series.map(function (s, i) {
          return {label: s.name, stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: false,
                  value: function (u, v) { return format(v, p.unit); }};
        })),
        legend: {live: false},
        cursor: {drag: {x: false, y: false}},
      };
      plot = new uPlot(opts, data, box);
    }

    this.load = function () {
      var range = rangeSeconds();
      step = stepFor(range);
      // The last point is now (not rounded down to the step): the newest sample is drawn.
      var end = Math.floor(Date.now() / 1000), start = end - range;
      return fetchRange(start, end).then(function (results) {
        draw(merge(results, start, end));
      }, function (err) {
        status.textContent = "error: " + err.message;
        node.classList.add("error");
      }).then(function () { node.setAttribute("aria-busy", "false"); });
    };

    this.tail = function () {
      // Live refresh: only the points after the newest one drawn, then drop as many old ones.
      if (!data) return self.load();
      var last = data[0][data[0].length - 1];
      var now = Math.floor(Date.now() / 1000);
      if (now < last + step) return Promise.resolve();
      var end = last + Math.floor((now - last) / step) * step;  // on the chart's grid
      return fetchRange(last + step, end).then(function (results) {
        var fresh = merge(results, last + step, end);
        var known = {};
        names.forEach(function (n, i) { known[n] = i + 1; });
        if (fresh.series.some(function (s) { return !(s.name in known); })) return self.load();
        var add = fresh.xs.length;
        data = data.map(function (col, i) {
          var extra = i === 0 ? fresh.xs : new Array(add).fill(null);
          return col.slice(add).concat(extra);
        });
        fresh.series.forEach(function (s) {
          var col = data[known[s.name]];
          for (var j = 0; j < add; j++) col[col.length - add + j] = s.ys[j];
        });
        plot.setData(data);
      }, function () { /* keep what is drawn; the next refresh tries again */ });
    };

    this.resize = function () { if (plot) plot.setSize({width: width(), height: 170}); };
  }

  // -- firing alerts (overview) -----------------------------------------------------------------
  function runbookHref(url) {
    if (!url) return "";
    var m = /(?:^|\/)docs\/runbooks\/([A-Za-z0-9_-]+)\.md$/.exec(url);
    if (m) return D.runbooks + m[1] + "/";
    return /^https?:\/\//.test(url) ? url : "";
  }
  D.runbookHref = runbookHref;

  function Firing(list) {
    this.load = function () {
      return getJSON("v1/alerts").then(function (body) {
        var firing = body.data.alerts.filter(function (a) { return a.state === "firing"; });
        list.textContent = "";
        if (!firing.length) list.appendChild(el("li", {"class": "muted"}, "nothing firing"));
        firing.forEach(function (a) {
          var sev = a.labels.severity || "none";
          var row = el("li", {"class": "alert-row sev-" + sev + "-row", "data-alertname": a.labels.alertname});
          var head = el("div", {"class": "head"});
          head.appendChild(el("span", {"class": "badge sev-" + sev}, sev));
          head.appendChild(el("strong", {}, a.labels.alertname));
          head.appendChild(el("span", {}, (a.annotations && a.annotations.summary) || ""));
          var href = runbookHref(a.annotations && a.annotations.runbook_url);
          if (href) head.appendChild(el("a", {href: href}, "runbook"));
          row.appendChild(head);
          list.appendChild(row);
        });
        list.dataset.count = firing.length;
      }, function (err) {
        list.textContent = "";
        list.appendChild(el("li", {"class": "error"}, "alerts unavailable: " + err.message));
      }).then(function () { list.setAttribute("aria-busy", "false"); });
    };
  }

  // -- the page -----------------------------------------------------------------------------
  var config = JSON.parse(document.getElementById("panel-config").textContent);
  var grid = document.getElementById("panels");
  var stats = [], charts = [];
  config.forEach(function (p) {
    var node = panelNode(p);
    grid.appendChild(node);
    if (p.kind === "stat") stats.push(new Stat(p, node));
    else if (p.kind === "health") stats.push(new Health(p, node));
    else charts.push(new Chart(p, node));
  });
  var firingList = document.getElementById("firing");
  if (firingList) stats.push(new Firing(firingList));

  var updated = document.getElementById("updated");
  function stamp() { if (updated) updated.textContent = "updated " + new Date().toLocaleTimeString(); }

  var first = stats.concat(charts).map(function (x) { return x.load(); });
  Promise.all(first).then(function () {
    document.documentElement.dataset.drawn = performance.now().toFixed(1);
    stamp();
  });

  var live = document.getElementById("live");
  var busy = false;
  function refresh() {
    if (busy || (live && !live.checked) || document.hidden) return;
    busy = true;
    var work = stats.map(function (s) { return s.load(); })
      .concat(charts.map(function (c) { return c.tail(); }));
    Promise.all(work).then(function () {
      busy = false;
      stamp();
      document.documentElement.dataset.refreshed = String(Number(document.documentElement.dataset.refreshed || 0) + 1);
    });
  }
  if (config.length || firingList) setInterval(refresh, D.refreshSeconds * 1000);
  D.refresh = refresh;

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { charts.forEach(function (c) { c.resize(); }); }, 100);
  });
})();
