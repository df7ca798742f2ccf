// spamsink console: live refresh and charts on top of server-rendered pages
// (which work without this file). Only textContent is ever set from data,
// so ledger text can never become markup; the CSP allows no inline code.
'use strict';
(function () {
  document.documentElement.classList.add('js');
  var REFRESH_MS = 5000;
  var charts = {};

  function text(n) {
    return typeof n === 'number' ? n.toLocaleString('en-US') : String(n);
  }
  function bytes(n) {
    var u = ['B', 'kB', 'MB', 'GB', 'TB'], i = 0;
    while (n >= 1000 && i < 4) { n /= 1000; i++; }
    return (i ? n.toFixed(1) : n.toFixed(0)) + ' ' + u[i];
  }
  function seconds(s) {
    if (s < 120) return s.toFixed(1) + ' s';
    if (s < 7200) return (s / 60).toFixed(1) + ' min';
    return (s / 3600).toFixed(1) + ' h';
  }
  var FORMAT = {
    bytes: bytes, rss_bytes: bytes, seconds_held: seconds,
    cpu_seconds: seconds, tarpit_delay_seconds: seconds,
    connection_seconds_per_cpu_second: function (v) { return v.toFixed(1); },
    time: String
  };

  function draw(id, rows, labels) {
    var el = document.getElementById(id);
    if (!el || typeof Dygraph === 'undefined') return;
    // dygraphs' legend measures text through a style attribute, which the
    // CSP (no 'unsafe-inline') refuses: the charts go without it.
    Dygraph.PLUGINS = Dygraph.PLUGINS.filter(function (p) {
      return p !== Dygraph.Plugins.Legend;
    });
    var opts = {
      labels: labels, legend: 'never', drawPoints: true,
      includeZero: true, fillGraph: true, animatedZooms: false,
      colors: labels.length > 3 ? ['#1f4e99', '#c0392b', '#8e44ad']
            : labels.length > 2 ? ['#1f4e99', '#c0392b'] : ['#2a7f62']
    };
    if (charts[id]) {
      charts[id].updateOptions({file: rows});
    } else {
      charts[id] = new Dygraph(el, rows, opts);
    }
    // For tests and curious readers: how many points, and the sum of the
    // first series (what the chart shows, as a number).
    var sum = rows.reduce(function (a, r) { return a + r[1]; }, 0);
    el.setAttribute('data-points', String(rows.length));
    el.setAttribute('data-sum', String(sum));
  }

  function refreshOverview() {
    fetch('/overview.json', {credentials: 'same-origin', cache: 'no-store'})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (d) {
        document.querySelectorAll('[data-key]').forEach(function (el) {
          var k = el.getAttribute('data-key');
          if (!(k in d)) return;
          el.textContent = (FORMAT[k] || text)(d[k]);
        });
        var counts = [], sizes = [];
        d.per_minute.forEach(function (p) {
          var t = new Date(p[0] * 1000);
          counts.push([t, p[1], p[2]]);
          sizes.push([t, p[3]]);
        });
        draw('chart-minute', counts, ['minute', 'connections', 'messages']);
        draw('chart-bytes', sizes, ['minute', 'bytes']);
        var hours = (d.per_hour || []).map(function (p) {
          return [new Date(p[0] * 1000), p[1], p[2], p[3]];
        });
        draw('chart-hour', hours,
             ['hour', 'sessions', 'messages', 'new sources']);
        document.body.setAttribute('data-refreshed', d.time);
      })
      .catch(function (e) {
        document.body.setAttribute('data-refresh-error', String(e));
      });
  }

  // A source's sessions per hour: the page carries its series (a static
  // record of committed hours; no polling).
  var sourceHours = document.getElementById('chart-source-hours');
  if (sourceHours) {
    try {
      var rows = JSON.parse(sourceHours.getAttribute('data-series') || '[]')
        .map(function (p) { return [new Date(p[0] * 1000), p[1], p[2]]; });
      if (rows.length) draw('chart-source-hours', rows, ['hour', 'sessions', 'messages']);
    } catch (e) {
      document.body.setAttribute('data-refresh-error', String(e));
    }
  }

  if (document.getElementById('chart-minute')) {
    refreshOverview();
    setInterval(refreshOverview, REFRESH_MS);
  }
})();
