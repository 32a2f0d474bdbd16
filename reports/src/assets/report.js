(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("sb-data").textContent);
  var COLOUR = ["#2da44e", "#cf222e", "#d4a72c", "#e8c766"];
  var NAME = ["ok", "fail", "info", "never completed"];
  var canvas = document.getElementById("timeline");
  if (!canvas) { document.body.dataset.ready = "1"; return; }
  var tip = document.getElementById("timeline-tip");
  var wrap = canvas.parentElement;
  var ctx = canvas.getContext("2d");
  var GUTTER = 58, RIGHT = 10, AXIS = 24;
  var ops = data.ops, nLanes = data.lanes.length;
  var laneH = nLanes > 0 ? Math.max(3, Math.min(26, Math.floor(560 / nLanes))) : 18;
  // A little room after the last event, so markers at the very end stay visible.
  var end = Math.max(data.end_us, 1) * 1.015;
  var ends = new Float64Array(ops.length);
  var lanes = [], tails = [], i, j;
  for (i = 0; i < nLanes; i++) lanes.push([]);
  for (i = 0; i < ops.length; i++) {
    lanes[ops[i][0]].push(i);
    ends[i] = ops[i][2] < 0 ? end : ops[i][2];
    if (ops[i][3] === 2) tails.push(i);
  }
  var laneTail = lanes.map(function () { return Infinity; });
  tails.forEach(function (k) { laneTail[ops[k][0]] = Math.min(laneTail[ops[k][0]], ends[k]); });
  var stuckOps = [];
  for (i = 0; i < ops.length; i++) if (data.stuck[ops[i][5]]) stuckOps.push(i);
  // Running maximum of end times per lane: lets us binary-search the first visible op.
  // (Bars in one lane do not overlap, so this is nearly their end times.)
  var maxEnd = lanes.map(function (l) {
    var a = new Float64Array(l.length), m = -1;
    for (var k = 0; k < l.length; k++) { m = Math.max(m, ends[l[k]]); a[k] = m; }
    return a;
  });
  var view = { t0: 0, t1: end }, W = 0, H = 0, hover = -1, drag = null;

  function plotW() { return Math.max(10, W - GUTTER - RIGHT); }
  function xOf(t) { return GUTTER + (t - view.t0) / (view.t1 - view.t0) * plotW(); }
  function tOf(x) { return view.t0 + (x - GUTTER) / plotW() * (view.t1 - view.t0); }
  function firstVisible(lane, t) {
    var a = maxEnd[lane], lo = 0, hi = a.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (a[mid] < t) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function niceStep(raw) {
    var mag = Math.pow(10, Math.floor(Math.log10(raw))), n = raw / mag;
    return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag;
  }
  function resize() {
    var dpr = window.devicePixelRatio || 1;
    W = wrap.clientWidth; H = AXIS + Math.max(1, nLanes) * laneH + 6;
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    canvas.style.width = W + "px"; canvas.style.height = H + "px";
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    draw();
  }
  function draw() {
    var started = performance.now();
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    ctx.save();
    ctx.beginPath(); ctx.rect(GUTTER, 0, plotW(), H); ctx.clip();
    for (var l = 0; l < nLanes; l += 2) { ctx.fillStyle = "#f6f8fa"; ctx.fillRect(GUTTER, AXIS + l * laneH, plotW(), laneH); }
    ctx.font = "11px sans-serif";
    // Axis: round steps in seconds.
    var span = view.t1 - view.t0, step = niceStep(span / 8), dec = Math.max(0, -Math.floor(Math.log10(step / 1e6)));
    ctx.strokeStyle = "#eaeef2";
    var ticks = [];
    for (var t = Math.ceil(view.t0 / step) * step; t <= view.t1; t += step) {
      var x = xOf(t);
      ctx.beginPath(); ctx.moveTo(x, AXIS); ctx.lineTo(x, H); ctx.stroke();
      ticks.push([x, (t / 1e6).toFixed(dec) + "s"]);
    }
    var barH = Math.max(1, laneH - (laneH > 6 ? 4 : 1));
    // Info tails: the operation may still take effect until the end of the history.
    ctx.fillStyle = "rgba(212,167,44,0.55)";
    var tailH = Math.max(1, Math.floor(barH / 4));
    // One tail per lane, from its earliest info operation: they all run to the end.
    for (var n = 0; n < nLanes; n++) {
      if (laneTail[n] === Infinity) continue;
      var tx = xOf(laneTail[n]);
      if (tx > W) continue;
      tx = Math.max(GUTTER, tx);
      ctx.fillRect(tx, AXIS + n * laneH + (laneH + barH) / 2 - tailH, W - tx, tailH);
    }
    for (var lane = 0; lane < nLanes; lane++) {
      var y = AXIS + lane * laneH + (laneH - barH) / 2, list = lanes[lane], lastPx = -1, lastC = -1;
      for (j = firstVisible(lane, view.t0); j < list.length; j++) {
        var k = list[j], op = ops[k];
        if (op[1] > view.t1) break;
        var x0 = Math.max(GUTTER - 2, xOf(op[1])), x1 = Math.min(W + 2, xOf(ends[k])), c = op[3];
        // Many sub-pixel bars land on one pixel when zoomed out: draw one of them.
        var px = Math.floor(x0);
        if (x1 - x0 < 1 && px === lastPx && c === lastC && !data.stuck[op[5]]) continue;
        lastPx = px; lastC = c;
        ctx.fillStyle = COLOUR[c];
        ctx.fillRect(x0, y, Math.max(1, x1 - x0), barH);
        if (data.stuck[op[5]]) {
          ctx.strokeStyle = "#82071e"; ctx.lineWidth = 2;
          ctx.strokeRect(x0 - 1, y - 1, Math.max(3, x1 - x0) + 2, barH + 2);
          ctx.lineWidth = 1;
        }
      }
    }
    // Fault windows over the bars, so they stay visible when lanes are dense.
    data.faults.forEach(function (f) {
      var a = xOf(f[0]), b = xOf(f[1]);
      if (b < GUTTER || a > W) return;
      ctx.fillStyle = "rgba(207,34,46,0.13)"; ctx.fillRect(a, AXIS, Math.max(1.5, b - a), H - AXIS);
      ctx.fillStyle = "rgba(207,34,46,0.6)"; ctx.fillRect(a, AXIS, 1.5, H - AXIS);
    });
    // Operations that cannot be linearized: a marker that stays visible at any zoom.
    stuckOps.forEach(function (k) {
      var sx0 = xOf(ops[k][1]), sx1 = xOf(ends[k]), cx = (sx0 + sx1) / 2, sy = AXIS + ops[k][0] * laneH;
      if (sx1 < GUTTER || sx0 > W) return;
      ctx.strokeStyle = "#82071e"; ctx.lineWidth = 2;
      ctx.strokeRect(Math.min(sx0, cx - 3) - 1, sy, Math.max(6, sx1 - sx0) + 2, laneH);
      ctx.lineWidth = 1;
      ctx.fillStyle = "#cf222e";
      ctx.beginPath(); ctx.moveTo(cx - 6, sy - 8); ctx.lineTo(cx + 6, sy - 8); ctx.lineTo(cx, sy); ctx.closePath(); ctx.fill();
    });
    if (hover >= 0) {
      var h = ops[hover], hy = AXIS + h[0] * laneH;
      ctx.strokeStyle = "#0969da"; ctx.lineWidth = 2;
      ctx.strokeRect(xOf(h[1]) - 1, hy, Math.max(3, xOf(ends[hover]) - xOf(h[1])) + 2, laneH);
      ctx.lineWidth = 1;
    }
    data.faults.forEach(function (f) {
      var a = Math.max(GUTTER, xOf(f[0])), b = Math.min(W - RIGHT, xOf(f[1]));
      if (b - a < 30) return;
      ctx.save(); ctx.beginPath(); ctx.rect(a, AXIS, b - a, 16); ctx.clip();
      ctx.fillStyle = "rgba(255,255,255,0.85)";
      var label = f[2] + (f[3] ? " " + f[3] : "");
      ctx.fillRect(a + 1, AXIS + 1, ctx.measureText(label).width + 8, 14);
      ctx.fillStyle = "#a40e26"; ctx.fillText(label, a + 4, AXIS + 12);
      ctx.restore();
    });
    ctx.restore();
    ctx.fillStyle = "#59636e"; ctx.font = "11px sans-serif";
    ticks.forEach(function (tk) {
      ctx.textAlign = tk[0] - GUTTER < 12 ? "left" : tk[0] > W - 20 ? "right" : "center";
      ctx.fillText(tk[1], tk[0], 14);
    });
    // Lane labels.
    ctx.fillStyle = "#fff"; ctx.fillRect(0, AXIS, GUTTER, H - AXIS);
    ctx.fillStyle = "#59636e"; ctx.textAlign = "right"; ctx.font = "11px sans-serif";
    var every = Math.max(1, Math.ceil(13 / laneH));
    for (var q = 0; q < nLanes; q += every) ctx.fillText(data.lanes[q], GUTTER - 6, AXIS + q * laneH + laneH / 2 + 4);
    ctx.textAlign = "left";
    // For tests and the curious: how long the last full redraw took.
    canvas.dataset.drawMs = (performance.now() - started).toFixed(1);
  }
  function opAt(x, y) {
    var lane = Math.floor((y - AXIS) / laneH);
    if (lane < 0 || lane >= nLanes || x < GUTTER) return -1;
    var t = tOf(x), tol = 3 * (view.t1 - view.t0) / plotW(), list = lanes[lane], best = -1, bestD = Infinity;
    for (var m = firstVisible(lane, t - tol); m < list.length; m++) {
      var k = list[m];
      if (ops[k][1] > t + tol) break;
      if (ends[k] < t - tol) continue;
      var d = t < ops[k][1] ? ops[k][1] - t : t > ends[k] ? t - ends[k] : 0;
      if (d < bestD) { bestD = d; best = k; }
    }
    return best;
  }
  function faultAt(x) {
    var t = tOf(x);
    for (var m = 0; m < data.faults.length; m++) if (data.faults[m][0] <= t && t <= data.faults[m][1]) return data.faults[m];
    return null;
  }
  function showTip(e, text) {
    var r = wrap.getBoundingClientRect();
    tip.textContent = text; tip.style.display = "block";
    var left = e.clientX - r.left + 14, top = e.clientY - r.top + 14;
    if (left + tip.offsetWidth > r.width) left = Math.max(0, e.clientX - r.left - tip.offsetWidth - 10);
    tip.style.left = left + "px"; tip.style.top = top + "px";
  }
  function describe(k) {
    var op = ops[k], s = op[6] + "\n" + NAME[op[3]] + ", invoked at " + (op[1] / 1e6).toFixed(3) + "s";
    s += op[2] < 0 ? ", never returned" : ", returned after " + ((op[2] - op[1]) / 1e3).toFixed(2) + " ms";
    if (op[3] >= 2) s += "\nindeterminate: it may take effect at any later time, or never";
    s += "\nevent " + op[5];
    if (data.stuck[op[5]]) s += "\n✗ cannot be linearized: click for the witness";
    return s;
  }
  function setView(t0, span) {
    span = Math.min(end, Math.max(span, Math.max(1, end / 1e7)));
    t0 = Math.min(Math.max(0, t0), end - span);
    view.t0 = t0; view.t1 = t0 + span; draw();
  }
  function zoom(factor, x) {
    var tm = tOf(x === undefined ? GUTTER + plotW() / 2 : x), span = (view.t1 - view.t0) * factor;
    setView(tm - (tm - view.t0) * factor, span);
  }
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var r = canvas.getBoundingClientRect();
    zoom(Math.exp(e.deltaY * 0.0015), e.clientX - r.left);
  }, { passive: false });
  canvas.addEventListener("mousedown", function (e) {
    drag = { x: e.clientX, t0: view.t0, t1: view.t1, moved: false };
    canvas.classList.add("dragging");
  });
  window.addEventListener("mouseup", function () { if (drag) { canvas.classList.remove("dragging"); setTimeout(function () { drag = null; }, 0); } });
  canvas.addEventListener("mousemove", function (e) {
    var r = canvas.getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
    if (drag && (e.buttons & 1)) {
      var dx = e.clientX - drag.x;
      if (Math.abs(dx) > 2) drag.moved = true;
      setView(drag.t0 - dx / plotW() * (drag.t1 - drag.t0), drag.t1 - drag.t0);
      tip.style.display = "none";
      return;
    }
    var k = opAt(x, y);
    if (k !== hover) { hover = k; draw(); }
    if (k >= 0) { showTip(e, describe(k)); return; }
    var f = y >= AXIS ? faultAt(x) : null;
    if (f) showTip(e, f[2] + (f[3] ? " " + f[3] : "") + "\n" + (f[0] / 1e6).toFixed(3) + "s – " + (f[1] / 1e6).toFixed(3) + "s" + (f[4] ? "" : " (never healed)"));
    else tip.style.display = "none";
  });
  canvas.addEventListener("mouseleave", function () { tip.style.display = "none"; if (hover >= 0) { hover = -1; draw(); } });
  canvas.addEventListener("click", function () {
    if (drag && drag.moved) return;
    if (hover < 0) return;
    var inv = ops[hover][5], target = data.stuck[inv] ? data.stuck[inv] : "ev-" + inv;
    var el = document.getElementById(target);
    if (el) { el.scrollIntoView({ block: "start" }); location.hash = target; }
  });
  canvas.addEventListener("dblclick", function () { setView(0, end); });
  document.getElementById("zoom-in").addEventListener("click", function () { zoom(0.5); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoom(2); });
  document.getElementById("zoom-reset").addEventListener("click", function () { setView(0, end); });
  window.addEventListener("resize", resize);
  // Witness drawings end at the stuck operation: show that end first.
  Array.prototype.forEach.call(document.querySelectorAll(".witness-draw"), function (el) { el.scrollLeft = el.scrollWidth; });
  resize();
  document.body.dataset.ready = "1";
})();
