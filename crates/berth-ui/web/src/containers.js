// The containers page: every container with its state, image, ports (as links), uptime and
// live CPU/memory sparklines; start/stop/restart/remove; refreshed by events.
import { api, encodeName } from "./api.js";
import { h, guarded, bytes, sparkline } from "./dom.js";
import { StatsStreams } from "./stats.js";

/** Links for a container's published ports. */
export function portLinks(ports) {
  const seen = new Set();
  return (ports || [])
    .filter((p) => p.PublicPort)
    .filter((p) => {
      const k = `${p.PublicPort}/${p.Type}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .map((p) => {
      const host = !p.IP || p.IP === "0.0.0.0" || p.IP === "::" ? location.hostname : p.IP;
      const label = `${p.PublicPort}→${p.PrivatePort}/${p.Type}`;
      return p.Type === "tcp"
        ? h("a", { href: `http://${host.includes(":") ? `[${host}]` : host}:${p.PublicPort}/`, target: "_blank", rel: "noopener noreferrer", class: "port" }, label)
        : h("span", { class: "port" }, label);
    });
}

export async function act(id, action) {
  if (action === "remove") {
    if (!confirm(`Remove container ${id.slice(0, 12)}?`)) return;
    return api("DELETE", `/containers/${encodeName(id)}?force=1`);
  }
  return api("POST", `/containers/${encodeName(id)}/${action}`);
}

function actions(c, refresh) {
  const running = c.State === "running";
  const paused = c.State === "paused";
  const btn = (label, action, show) =>
    show &&
    h("button", {
      type: "button",
      class: `act act-${action}`,
      "data-action": action,
      "aria-label": `${label} ${name(c)}`,
      onclick: async (e) => {
        e.target.disabled = true;
        await guarded(() => act(c.Id, action));
        e.target.disabled = false;
        refresh();
      },
    }, label);
  return h("span", { class: "actions" },
    btn("Start", "start", !running && !paused),
    btn("Stop", "stop", running || paused),
    btn("Restart", "restart", running),
    btn("Pause", "pause", running),
    btn("Unpause", "unpause", paused),
    btn("Remove", "remove", true));
}

const name = (c) => (c.Names && c.Names[0] ? c.Names[0].replace(/^\//, "") : c.Id.slice(0, 12));

export const containersPage = {
  render(view) {
    const stats = new StatsStreams((id, st) => {
      const cell = view.querySelector(`[data-stats="${id}"]`);
      if (cell) fillStats(cell, st);
    });
    const tbody = h("tbody");
    const table = h("table", { id: "containers" },
      h("caption", {}, "Containers"),
      h("thead", {}, h("tr", {}, ["Name", "Image", "State", "Ports", "CPU / memory", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
      tbody);
    view.append(h("h1", {}, "Containers"), h("p", {}, h("a", { href: "#/images" }, "Run a new container from an image")), table);
    let timer = null;
    const refresh = () => {
      clearTimeout(timer);
      timer = setTimeout(load, 100);
    };
    async function load() {
      const list = await guarded(() => api("GET", "/containers/json?all=1"));
      if (!list) return;
      tbody.replaceChildren(...list.map((c) => h("tr", { "data-id": c.Id, "data-name": name(c), "data-state": c.State },
        h("td", {}, h("a", { href: `#/containers/${c.Id}` }, name(c))),
        h("td", {}, c.Image),
        h("td", {}, h("span", { class: `state state-${c.State}` }, c.State), " ", h("small", {}, c.Status)),
        h("td", {}, portLinks(c.Ports)),
        h("td", { "data-stats": c.Id }, c.State === "running" ? "…" : "–"),
        h("td", {}, actions(c, refresh)))));
      if (!list.length) tbody.append(h("tr", {}, h("td", { colspan: 6 }, "No containers yet.")));
      const running = list.filter((c) => c.State === "running" || c.State === "paused").map((c) => c.Id);
      stats.follow(running);
      for (const id of running) {
        const st = stats.get(id);
        const cell = view.querySelector(`[data-stats="${id}"]`);
        if (st && st.cpu.length && cell) fillStats(cell, st);
      }
    }
    containersPage.onEvent = (ev) => {
      if (ev.Type === "container") refresh();
    };
    load();
    return () => {
      clearTimeout(timer);
      stats.stop();
      containersPage.onEvent = null;
    };
  },
  onEvent: null,
};

/** CPU % and memory with sparklines. */
export function fillStats(cell, st) {
  const cpu = st.cpu[st.cpu.length - 1] || 0;
  const mem = st.mem[st.mem.length - 1] || 0;
  cell.replaceChildren(
    h("span", { class: "metric", "data-metric": "cpu" }, sparkline(st.cpu, 0, "CPU history"), ` ${cpu.toFixed(1)}%`),
    h("span", { class: "metric", "data-metric": "mem" }, sparkline(st.mem, 0, "memory history"), ` ${bytes(mem)}`),
  );
  cell.dataset.samples = String(st.cpu.length);
}
