// Lumen live view: polls the JSON API under live/api/ (relative to the
// page), draws the live charts as SVG and the selected trace as a
// waterfall. No libraries, nothing loaded from elsewhere.
(function () {
  'use strict';

  var KEY_STORE = 'lumen.liveview.key';
  var SVG = 'http://www.w3.org/2000/svg';
  var CHART_SPAN_MS = 5 * 60 * 1000; // charts show the last five minutes
  var TRACE_POLL_MS = 2000;

  var CHARTS = {
    requestsPerSec: { digits: 2 },
    ttftP50Ms: { digits: 1 },
    outputTokensPerSec: { digits: 1 },
    batchSize: { digits: 2 },
    queueDepth: { digits: 0 },
    kvUsedRatio: { digits: 1, scale: 100, max: 100 }
  };

  var state = {
    key: null,
    intervalMs: 1000,
    maxSamples: 600,
    samples: [],
    lastT: null,
    selected: null,
    selectedSpan: null,
    detail: null
  };

  function $(sel) { return document.querySelector(sel); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  // titled gives a cell its own text as a tooltip, for names the column
  // cuts short.
  function titled(e) {
    e.title = e.textContent;
    return e;
  }

  function svgEl(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }

  // --- API access and the key ---------------------------------------------

  function AuthError() { this.message = 'API key required'; }

  function takeKeyFromURL() {
    var params = new URLSearchParams(location.search);
    var k = params.get('key');
    if (k) {
      sessionStorage.setItem(KEY_STORE, k);
      params.delete('key');
      var q = params.toString();
      history.replaceState(null, '', location.pathname + (q ? '?' + q : '') + location.hash);
    }
    state.key = sessionStorage.getItem(KEY_STORE);
  }

  function api(path) {
    var headers = {};
    if (state.key) headers.Authorization = 'Bearer ' + state.key;
    return fetch('live/api/' + path, { headers: headers, cache: 'no-store' }).then(function (r) {
      if (r.status === 401) {
        askForKey();
        throw new AuthError();
      }
      return r.json().then(function (body) {
        if (!r.ok) {
          var err = new Error((body.error && body.error.message) || r.statusText);
          err.status = r.status;
          throw err;
        }
        return body;
      });
    });
  }

  function askForKey() {
    $('#key-form').hidden = false;
    setConn('auth', state.key ? 'key rejected' : 'key required');
  }

  function setConn(st, text) {
    var c = $('#conn');
    c.dataset.state = st;
    c.textContent = text;
  }

  $('#key-entry').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var k = $('#key-input').value.trim();
    if (!k) return;
    sessionStorage.setItem(KEY_STORE, k);
    state.key = k;
    $('#key-input').value = '';
    $('#key-form').hidden = true;
    refreshSeries();
    refreshTraces();
  });

  // --- formatting ---------------------------------------------------------

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '–';
    if (ms >= 10000) return (ms / 1000).toFixed(1) + ' s';
    if (ms >= 1000) return (ms / 1000).toFixed(2) + ' s';
    if (ms >= 10) return ms.toFixed(0) + ' ms';
    return ms.toFixed(1) + ' ms';
  }

  function fmtClock(us) {
    var d = new Date(us / 1000);
    function p(n, w) { return String(n).padStart(w, '0'); }
    return p(d.getHours(), 2) + ':' + p(d.getMinutes(), 2) + ':' + p(d.getSeconds(), 2) + '.' + p(d.getMilliseconds(), 3);
  }

  function fmtValue(v) {
    if (v === null || v === undefined) return '–';
    if (Array.isArray(v)) return v.map(fmtValue).join(', ');
    if (typeof v === 'number' && !Number.isInteger(v)) return String(Math.round(v * 1000) / 1000);
    return String(v);
  }

  // --- charts -------------------------------------------------------------

  function chartValue(s, name) {
    var v = s[name];
    if (v === null || v === undefined) return null;
    return v * (CHARTS[name].scale || 1);
  }

  function niceMax(m) {
    if (!(m > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(m)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (m <= steps[i] * p) return steps[i] * p;
    }
    return 10 * p;
  }

  function drawChart(svg, name) {
    var spec = CHARTS[name];
    var W = 320, H = 100, top = 6, bottom = 14, left = 0;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var samples = state.samples;
    var box = svg.closest('.chart-box');
    if (!samples.length) {
      svg.dataset.points = '0';
      svg.dataset.max = '0';
      svg.appendChild(svgEl('text', { 'class': 'empty', x: 4, y: 50 })).textContent = 'waiting for data…';
      box.querySelector('.value').textContent = '';
      return;
    }
    var tEnd = samples[samples.length - 1].t;
    var tStart = Math.max(samples[0].t, tEnd - CHART_SPAN_MS);
    var span = Math.max(tEnd - tStart, 60000);
    tStart = tEnd - span;
    var pts = [];
    var max = 0;
    samples.forEach(function (s) {
      if (s.t < tStart) return;
      var v = chartValue(s, name);
      pts.push({ t: s.t, v: v });
      if (v !== null && v > max) max = v;
    });
    var ymax = spec.max || niceMax(max * 1.1);
    var x = function (t) { return left + (t - tStart) / span * (W - left); };
    var y = function (v) { return top + (1 - v / ymax) * (H - top - bottom); };
    [0, 0.5, 1].forEach(function (f) {
      var yy = top + f * (H - top - bottom);
      svg.appendChild(svgEl('line', { 'class': 'grid', x1: 0, x2: W, y1: yy, y2: yy }));
    });
    // Nulls (nothing to show in that second) break the line.
    var d = '', area = '', n = 0, segStart = null, prev = null;
    pts.forEach(function (p) {
      if (p.v === null) {
        if (prev !== null) area += 'L' + x(prev.t).toFixed(1) + ',' + y(0).toFixed(1) + 'Z';
        prev = null;
        return;
      }
      var cmd = prev === null ? 'M' : 'L';
      d += cmd + x(p.t).toFixed(1) + ',' + y(p.v).toFixed(1);
      if (prev === null) {
        segStart = p;
        area += 'M' + x(p.t).toFixed(1) + ',' + y(0).toFixed(1) + 'L' + x(p.t).toFixed(1) + ',' + y(p.v).toFixed(1);
      } else {
        area += 'L' + x(p.t).toFixed(1) + ',' + y(p.v).toFixed(1);
      }
      prev = p;
      n++;
    });
    if (prev !== null && segStart !== null) area += 'L' + x(prev.t).toFixed(1) + ',' + y(0).toFixed(1) + 'Z';
    if (n > 0) {
      svg.appendChild(svgEl('path', { 'class': 'area', d: area }));
      svg.appendChild(svgEl('path', { 'class': 'line', d: d }));
    }
    svg.appendChild(svgEl('text', { 'class': 'label', x: 2, y: top + 8 })).textContent = fmtValue(ymax);
    svg.appendChild(svgEl('text', { 'class': 'label', x: 2, y: H - 2 })).textContent = '−' + Math.round(span / 60000) + ' min';
    svg.appendChild(svgEl('text', { 'class': 'label', x: W - 22, y: H - 2 })).textContent = 'now';
    svg.dataset.points = String(n);
    svg.dataset.max = String(max);
    var last = chartValue(samples[samples.length - 1], name);
    box.querySelector('.value').textContent = last === null ? '–' : last.toFixed(spec.digits);
  }

  function drawCharts() {
    document.querySelectorAll('svg.chart').forEach(function (svg) { drawChart(svg, svg.dataset.series); });
  }

  function refreshSeries() {
    var q = state.lastT === null ? 'series' : 'series?since=' + state.lastT;
    return api(q).then(function (body) {
      if (body.samples.length) {
        state.samples = state.samples.concat(body.samples).slice(-state.maxSamples);
        state.lastT = state.samples[state.samples.length - 1].t;
      }
      setConn('live', 'live');
      drawCharts();
    }).catch(handleError);
  }

  // --- trace list ---------------------------------------------------------

  function refreshTraces() {
    return api('traces').then(function (body) {
      renderTraces(body.traces || []);
    }).catch(handleError);
  }

  function renderTraces(traces) {
    var tbody = $('#traces tbody');
    var rows = document.createDocumentFragment();
    traces.forEach(function (t) {
      var tr = el('tr');
      tr.dataset.traceId = t.traceId;
      tr.dataset.status = t.status;
      if (t.traceId === state.selected) tr.classList.add('selected');
      tr.appendChild(el('td', 'time', fmtClock(t.startUs)));
      tr.appendChild(titled(el('td', 'operation', t.operation + (t.requests > 1 ? ' ×' + t.requests : ''))));
      tr.appendChild(titled(el('td', 'model', t.model || '–')));
      tr.appendChild(titled(el('td', 'tenant', t.tenant || '–')));
      tr.appendChild(el('td', 'num duration', fmtMs(t.durationMs)));
      tr.appendChild(el('td', 'num tokens', t.status === 'running' ? '…' : t.inputTokens + ' → ' + t.outputTokens));
      tr.appendChild(el('td', 'num ttft', fmtMs(t.ttftMs)));
      var st = el('td', 'status-cell');
      var badge = el('span', 'status', t.status + (t.finishReason && t.finishReason !== t.status ? ' (' + t.finishReason + ')' : ''));
      badge.dataset.status = t.status;
      st.appendChild(badge);
      tr.appendChild(st);
      tr.title = t.name + '\ntrace ' + t.traceId;
      rows.appendChild(tr);
    });
    tbody.replaceChildren(rows);
    $('#no-traces').hidden = traces.length > 0;
    $('#trace-count').textContent = traces.length ? '(' + traces.length + ')' : '';
    // A running selected trace keeps refreshing until it ends.
    if (state.selected && state.detail && state.detail.status === 'running') loadTrace(state.selected);
  }

  $('#traces tbody').addEventListener('click', function (ev) {
    var tr = ev.target.closest('tr[data-trace-id]');
    if (tr) location.hash = 'trace=' + tr.dataset.traceId;
  });

  // --- waterfall ----------------------------------------------------------

  function selectFromHash() {
    var m = /^#trace=([0-9a-f]{32})$/.exec(location.hash);
    state.selected = m ? m[1] : null;
    document.querySelectorAll('#traces tr.selected').forEach(function (tr) { tr.classList.remove('selected'); });
    if (!state.selected) {
      $('#waterfall').hidden = true;
      state.detail = null;
      return;
    }
    var row = document.querySelector('#traces tr[data-trace-id="' + state.selected + '"]');
    if (row) row.classList.add('selected');
    state.selectedSpan = null;
    loadTrace(state.selected);
  }

  function loadTrace(id) {
    return api('traces/' + id).then(function (d) {
      if (id !== state.selected) return;
      state.detail = d;
      renderWaterfall(d);
    }).catch(function (err) {
      if (err.status === 404 && id === state.selected) {
        renderMissing(id, err.message);
        return;
      }
      handleError(err);
    });
  }

  function renderMissing(id, message) {
    var wf = $('#waterfall');
    wf.hidden = false;
    wf.dataset.traceId = id;
    $('#wf-title').textContent = 'Trace ' + id;
    $('#wf-summary').textContent = message;
    $('#wf-axis').replaceChildren();
    $('#wf-rows').replaceChildren();
  }

  // order lists spans parent before child, siblings by start time, each
  // with its depth.
  function order(spans) {
    var byId = {}, kids = {}, roots = [];
    spans.forEach(function (s) { byId[s.spanId] = s; });
    spans.forEach(function (s) {
      if (s.parentSpanId && byId[s.parentSpanId]) (kids[s.parentSpanId] = kids[s.parentSpanId] || []).push(s);
      else roots.push(s);
    });
    var out = [];
    (function walk(list, depth) {
      list.sort(function (a, b) { return a.startUs - b.startUs; });
      list.forEach(function (s) {
        out.push({ span: s, depth: depth });
        walk(kids[s.spanId] || [], depth + 1);
      });
    })(roots, 0);
    return out;
  }

  function renderWaterfall(d) {
    var wf = $('#waterfall');
    wf.hidden = false;
    wf.dataset.traceId = d.traceId;
    wf.dataset.status = d.status;
    $('#wf-title').textContent = d.name + ' · ' + d.traceId;
    var parts = [d.status, fmtMs(d.durationMs)];
    if (d.model) parts.push('model ' + d.model);
    if (d.tenant) parts.push('tenant ' + d.tenant);
    if (d.status !== 'running') parts.push(d.inputTokens + ' → ' + d.outputTokens + ' tokens');
    if (d.ttftMs !== null) parts.push('TTFT ' + fmtMs(d.ttftMs));
    parts.push(d.batchSteps.length + ' linked batch steps');
    $('#wf-summary').textContent = parts.join(' · ');

    var t0 = Infinity, t1 = -Infinity;
    d.spans.forEach(function (s) { t0 = Math.min(t0, s.startUs); t1 = Math.max(t1, s.endUs); });
    d.batchSteps.forEach(function (b) { t0 = Math.min(t0, b.startUs); t1 = Math.max(t1, b.endUs); });
    if (!isFinite(t0)) { t0 = 0; t1 = 1; }
    var total = Math.max(t1 - t0, 1);
    var pct = function (us) { return ((us - t0) / total * 100).toFixed(3) + '%'; };
    var widthPct = function (a, b) { return (Math.max(b - a, 0) / total * 100).toFixed(3) + '%'; };

    var axis = $('#wf-axis');
    axis.replaceChildren();
    [0, 0.25, 0.5, 0.75, 1].forEach(function (f) {
      var s = el('span', null, fmtMs(total * f / 1000));
      s.style.left = (f * 100) + '%';
      axis.appendChild(s);
    });

    var rows = document.createDocumentFragment();
    var byRequest = {};
    d.batchSteps.forEach(function (b) { (byRequest[b.requestSpanId] = byRequest[b.requestSpanId] || []).push(b); });

    // A request's batch steps go just below its subtree (its phases).
    var pending = [];
    var flush = function (depth) {
      while (pending.length && pending[pending.length - 1].depth >= depth) {
        var p = pending.pop();
        rows.appendChild(batchRow(byRequest[p.id], p.depth + 1, pct, widthPct));
        delete byRequest[p.id];
      }
    };
    order(d.spans).forEach(function (item) {
      var s = item.span;
      flush(item.depth);
      var row = el('div', 'wf-row');
      row.dataset.spanId = s.spanId;
      row.dataset.role = s.role;
      if (s.spanId === state.selectedSpan) row.classList.add('selected');
      var label = el('div', 'wf-label', s.name);
      label.style.paddingLeft = (item.depth * 12) + 'px';
      label.title = s.name;
      row.appendChild(label);
      var track = el('div', 'wf-track');
      var bar = el('div', 'bar role-' + s.role + (s.running ? ' running' : '') + (s.status === 'error' ? ' status-error' : ''));
      bar.dataset.spanName = s.name;
      bar.dataset.role = s.role;
      bar.dataset.spanId = s.spanId;
      bar.style.left = pct(s.startUs);
      bar.style.width = widthPct(s.startUs, s.endUs);
      bar.title = s.name + ' · ' + fmtMs(s.durationMs);
      s.events.forEach(function (e) {
        var mark = el('span', 'event');
        mark.dataset.eventName = e.name;
        var span = Math.max(s.endUs - s.startUs, 1);
        mark.style.left = Math.min(Math.max((e.timeUs - s.startUs) / span * 100, 0), 100).toFixed(3) + '%';
        mark.title = e.name + ' ' + Object.keys(e.attributes).map(function (k) { return k + '=' + fmtValue(e.attributes[k]); }).join(' ');
        bar.appendChild(mark);
      });
      track.appendChild(bar);
      row.appendChild(track);
      row.appendChild(el('div', 'wf-dur', s.running ? 'running' : fmtMs(s.durationMs)));
      row.addEventListener('click', function () { showSpan(s); });
      rows.appendChild(row);
      if (s.role === 'request' && byRequest[s.spanId]) pending.push({ id: s.spanId, depth: item.depth });
    });
    flush(0);
    // Steps of requests whose span was not kept.
    Object.keys(byRequest).forEach(function (id) { rows.appendChild(batchRow(byRequest[id], 0, pct, widthPct)); });
    $('#wf-rows').replaceChildren(rows);

    var dropped = [];
    if (d.droppedSpans) dropped.push(d.droppedSpans + ' spans');
    if (d.droppedBatchSteps) dropped.push(d.droppedBatchSteps + ' batch steps');
    $('#wf-dropped').hidden = dropped.length === 0;
    $('#wf-dropped').textContent = dropped.length ? 'Not kept (bounds): ' + dropped.join(', ') : '';
    if (state.selectedSpan) {
      var again = d.spans.filter(function (s) { return s.spanId === state.selectedSpan; })[0];
      if (again) showSpan(again);
    }
  }

  function batchRow(steps, depth, pct, widthPct) {
    var row = el('div', 'wf-row wf-batches');
    row.dataset.role = 'batch';
    var label = el('div', 'wf-label', 'batch steps (' + steps.length + ')');
    label.style.paddingLeft = (depth * 12) + 'px';
    row.appendChild(label);
    var track = el('div', 'wf-track');
    steps.forEach(function (b) {
      var bar = el('div', 'bar role-batch' + (b.seqPrefillTokens > 0 ? ' prefill-step' : '') + (b.error ? ' status-error' : ''));
      bar.dataset.spanName = 'batch';
      bar.dataset.role = 'batch';
      bar.dataset.spanId = b.spanId;
      bar.dataset.batchSize = String(b.size);
      bar.style.left = pct(b.startUs);
      bar.style.width = widthPct(b.startUs, b.endUs);
      bar.title = 'batch of ' + b.size + ' · ' + fmtMs(b.durationMs) + ' · prefill ' + b.prefillTokens +
        ' / decode ' + b.decodeTokens + ' tokens · this request: ' +
        (b.seqPrefillTokens > 0 ? b.seqPrefillTokens + ' prompt tokens' : 'decode') + ' · KV ' + b.kvUsedCells + '/' + b.kvSizeCells;
      bar.addEventListener('click', function (ev) { ev.stopPropagation(); showBatch(b); });
      track.appendChild(bar);
    });
    row.appendChild(track);
    var sum = steps.reduce(function (a, b) { return a + b.durationMs; }, 0);
    row.appendChild(el('div', 'wf-dur', fmtMs(sum)));
    return row;
  }

  function showAttrs(title, attrs) {
    $('#span-detail').hidden = false;
    $('#sd-title').textContent = title;
    var body = document.createDocumentFragment();
    Object.keys(attrs).sort().forEach(function (k) {
      var tr = el('tr');
      tr.appendChild(el('td', null, k));
      tr.appendChild(el('td', null, fmtValue(attrs[k])));
      body.appendChild(tr);
    });
    $('#sd-attrs tbody').replaceChildren(body);
  }

  function showSpan(s) {
    state.selectedSpan = s.spanId;
    document.querySelectorAll('.wf-row.selected').forEach(function (r) { r.classList.remove('selected'); });
    var row = document.querySelector('.wf-row[data-span-id="' + s.spanId + '"]');
    if (row) row.classList.add('selected');
    var attrs = Object.assign({ 'span.id': s.spanId, 'span.kind': s.kind, 'duration': fmtMs(s.durationMs), 'status': s.status + (s.statusMessage ? ': ' + s.statusMessage : '') }, s.attributes);
    s.events.forEach(function (e, i) {
      attrs['event ' + (i + 1) + ': ' + e.name] = '+' + fmtMs((e.timeUs - s.startUs) / 1000) + ' ' +
        Object.keys(e.attributes).map(function (k) { return k + '=' + fmtValue(e.attributes[k]); }).join(' ');
    });
    showAttrs(s.name, attrs);
  }

  function showBatch(b) {
    showAttrs('batch step (trace ' + b.traceId + ')', {
      'span.id': b.spanId, 'duration': fmtMs(b.durationMs), 'lumen.batch.size': b.size,
      'lumen.batch.prefill_tokens': b.prefillTokens, 'lumen.batch.decode_tokens': b.decodeTokens,
      'lumen.kv_cache.used_cells': b.kvUsedCells, 'lumen.kv_cache.size_cells': b.kvSizeCells,
      'this request: slot': b.slot, 'this request: prompt tokens': b.seqPrefillTokens, 'this request: decoded': b.seqDecode
    });
  }

  $('#wf-close').addEventListener('click', function () {
    history.replaceState(null, '', location.pathname + location.search);
    selectFromHash();
  });

  // --- status and polling -------------------------------------------------

  function handleError(err) {
    if (err instanceof AuthError) return;
    setConn('error', 'error: ' + err.message);
  }

  function poll(fn, ms) {
    var run = function () { fn().then(function () { setTimeout(run, ms); }); };
    run();
  }

  function start() {
    takeKeyFromURL();
    fetch('live/api/status', { cache: 'no-store' }).then(function (r) { return r.json(); }).then(function (st) {
      state.intervalMs = st.intervalMs || 1000;
      state.maxSamples = st.history || 600;
      var notice = $('#notice');
      if (!st.tracing) {
        notice.hidden = false;
        notice.dataset.kind = 'tracing-off';
        notice.textContent = 'Tracing is off (OTEL_SDK_DISABLED=true): no traces are recorded, so the trace list stays empty ' +
          'and the request charts stay flat. Queue depth and KV cache use still come from the scheduler.';
      }
      if (st.authRequired && !state.key) askForKey();
      window.addEventListener('hashchange', selectFromHash);
      selectFromHash();
      poll(refreshSeries, state.intervalMs);
      poll(refreshTraces, TRACE_POLL_MS);
    }).catch(function (err) { setConn('error', 'cannot reach the server: ' + err.message); setTimeout(start, 3000); });
  }

  start();
})();
