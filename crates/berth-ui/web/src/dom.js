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
