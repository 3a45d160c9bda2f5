// A tiny DOM builder and the shared page chrome (banner, formatting).

/** h("button", {onclick, class: "x"}, "text", child…) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Show an error (or any notice) at the top; cleared by the next success or a click. */
export function banner(msg, kind = "error") {
  const b = document.getElementById("banner");
  if (!msg) {
    b.hidden = true;
    b.textContent = "";
    return;
  }
  b.hidden = false;
  b.className = kind;
  b.textContent = msg;
}

/** Run an action, showing its error in the banner instead of failing silently. */
export async function guarded(fn) {
  try {
    const r = await fn();
    banner(null);
    return r;
  } catch (e) {
    banner(e.message || String(e));
    return undefined;
  }
}

export function bytes(n) {
  if (!Number.isFinite(n)) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export function ago(unixSeconds) {
  const s = Math.max(0, Date.now() / 1000 - unixSeconds);
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

const SVG = "http://www.w3.org/2000/svg";

/** A sparkline of `values` (0..max) as an SVG polyline. */
export function sparkline(values, max, label) {
  const w = 80;
  const ht = 20;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${ht}`);
  svg.setAttribute("width", w);
  svg.setAttribute("height", ht);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("class", "spark");
  const top = Math.max(max, ...values, 1e-9);
  const pts = values.map((v, i) => {
    const x = values.length > 1 ? (i / (values.length - 1)) * w : w;
    return `${x.toFixed(1)},${(ht - (v / top) * (ht - 2) - 1).toFixed(1)}`;
  });
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", pts.join(" "));
  svg.append(line);
  return svg;
}

/**
 * A larger chart of `values` for the container page: filled line, the top of the scale and the
 * latest value written out (`fmt` formats both), `limit` drawn as the scale's top when given.
 */
export function chart(values, { label, fmt, limit = 0 }) {
  const w = 360;
  const ht = 110;
  const pad = 16;
  const svg = document.createElementNS(SVG, "svg");
  for (const [k, v] of Object.entries({ viewBox: `0 0 ${w} ${ht}`, width: w, height: ht, role: "img", class: "chart" })) {
    svg.setAttribute(k, v);
  }
  const top = Math.max(limit, ...values, 1e-9);
  const last = values.length ? values[values.length - 1] : 0;
  svg.setAttribute("aria-label", `${label}: ${fmt(last)} now, scale up to ${fmt(top)}`);
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  const y = (v) => (ht - pad - (v / top) * (ht - 2 * pad)).toFixed(1);
  const x = (i) => (values.length > 1 ? (i / (values.length - 1)) * w : w).toFixed(1);
  el("line", { x1: 0, x2: w, y1: y(top), y2: y(top), class: "chart-grid" });
  el("line", { x1: 0, x2: w, y1: y(0), y2: y(0), class: "chart-grid" });
  if (values.length) {
    const pts = values.map((v, i) => `${x(i)},${y(v)}`).join(" ");
    el("polygon", { points: `${x(0)},${y(0)} ${pts} ${x(values.length - 1)},${y(0)}`, class: "chart-area" });
    el("polyline", { points: pts, class: "chart-line" });
  }
  el("text", { x: 2, y: pad - 4, class: "chart-text" }, `${label} · max ${fmt(top)}`);
  el("text", { x: w - 2, y: pad - 4, "text-anchor": "end", class: "chart-text" }, fmt(last));
  return svg;
}
