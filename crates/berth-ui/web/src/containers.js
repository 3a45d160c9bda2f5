// The containers page: every container with its state, image, ports (as links), uptime and
// live CPU/memory sparklines; start/stop/restart/remove, one at a time or on a selection;
// compose projects grouped with up/stop/down; refreshed by events.
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

/** The engine call for one action on one container (remove is forced, as the CLI's `rm -f`). */
function request(id, action) {
  return action === "remove"
    ? api("DELETE", `/containers/${encodeName(id)}?force=1`)
    : api("POST", `/containers/${encodeName(id)}/${action}`);
}

export async function act(id, action) {
  if (action === "remove" && !confirm(`Remove container ${id.slice(0, 12)}?`)) return;
  return request(id, action);
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

const PROJECT = "com.docker.compose.project";

/** Run `action` on each id; one banner line naming every container that failed. */
async function each(ids, action, names) {
  const results = await Promise.allSettled(ids.map((id) => request(id, action)));
  const failed = results.map((r, i) => r.status === "rejected" && `${names.get(ids[i]) || ids[i].slice(0, 12)}: ${r.reason.message}`).filter(Boolean);
  if (failed.length) throw new Error(`${action} failed for ${failed.join("; ")}`);
}

/** `compose down` for what the engine knows: the project's containers, then its networks. */
async function projectDown(project, ids, names) {
  await each(ids, "remove", names);
  const filters = encodeURIComponent(JSON.stringify({ label: [`${PROJECT}=${project}`] }));
  const nets = await api("GET", `/networks?filters=${filters}`);
  for (const n of nets || []) await api("DELETE", `/networks/${encodeName(n.Id)}`);
}

export const containersPage = {
  render(view) {
    const stats = new StatsStreams((id, st) => {
      const cell = view.querySelector(`[data-stats="${id}"]`);
      if (cell) fillStats(cell, st);
    });
    const selected = new Set();
    let names = new Map();
    const count = h("span", { id: "bulk-count", role: "status" }, "none selected");
    const all = h("input", { type: "checkbox", id: "select-all", "aria-label": "select all containers" });
    const bulkBtn = (label, action) => h("button", {
      type: "button", "data-bulk": action, disabled: true,
      onclick: async (e) => {
        const ids = [...selected];
        if (action === "remove" && !confirm(`Remove ${ids.length} container(s)?`)) return;
        e.target.disabled = true;
        await guarded(() => each(ids, action, names));
        if (action === "remove") ids.forEach((id) => selected.delete(id));
        refresh();
      },
    }, label);
    const bulk = h("div", { class: "bulk", role: "toolbar", "aria-label": "actions on the selected containers" },
      count, bulkBtn("Start", "start"), bulkBtn("Stop", "stop"), bulkBtn("Restart", "restart"), bulkBtn("Remove", "remove"));
    const syncBulk = () => {
      count.textContent = selected.size ? `${selected.size} selected` : "none selected";
      for (const b of bulk.querySelectorAll("button")) b.disabled = !selected.size;
      const boxes = [...view.querySelectorAll("input[data-select]")];
      all.checked = boxes.length > 0 && boxes.every((b) => b.checked);
    };
    all.addEventListener("change", () => {
      for (const b of view.querySelectorAll("input[data-select]")) {
        b.checked = all.checked;
        if (all.checked) selected.add(b.dataset.select);
        else selected.delete(b.dataset.select);
      }
      syncBulk();
    });
    const table = h("table", { id: "containers" },
      h("caption", {}, "Containers"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, all),
        ["Name", "Image", "State", "Ports", "CPU / memory", "Actions"].map((t) => h("th", { scope: "col" }, t)))));
    view.append(h("h1", {}, "Containers"), h("p", {}, h("a", { href: "#/images" }, "Run a new container from an image")), bulk, table);
    let timer = null;
    const refresh = () => {
      clearTimeout(timer);
      timer = setTimeout(load, 100);
    };
    const row = (c) => {
      const box = h("input", { type: "checkbox", "data-select": c.Id, "aria-label": `select ${name(c)}`, checked: selected.has(c.Id) });
      box.addEventListener("change", () => {
        if (box.checked) selected.add(c.Id);
        else selected.delete(c.Id);
        syncBulk();
      });
      return h("tr", { "data-id": c.Id, "data-name": name(c), "data-state": c.State },
        h("td", {}, box),
        h("td", {}, h("a", { href: `#/containers/${c.Id}` }, name(c))),
        h("td", {}, c.Image),
        h("td", {}, h("span", { class: `state state-${c.State}` }, c.State), " ", h("small", {}, c.Status)),
        h("td", {}, portLinks(c.Ports)),
        h("td", { "data-stats": c.Id }, c.State === "running" ? "…" : "–"),
        h("td", {}, actions(c, refresh)));
    };
    const projectHead = (project, cs) => {
      const ids = cs.map((c) => c.Id);
      const up = cs.filter((c) => c.State === "running").length;
      const btn = (label, action, run) => h("button", {
        type: "button", "data-project-action": action, "aria-label": `${label} project ${project}`,
        onclick: async (e) => {
          e.target.disabled = true;
          await guarded(run);
          refresh();
        },
      }, label);
      return h("tr", { class: "project", "data-project": project },
        h("th", { colspan: 7, scope: "rowgroup" }, `compose project ${project} `,
          h("small", {}, `${up} of ${cs.length} running`),
          h("span", { class: "actions" },
            btn("Up", "up", () => each(cs.filter((c) => c.State !== "running" && c.State !== "paused").map((c) => c.Id), "start", names)),
            btn("Stop", "stop", () => each(cs.filter((c) => c.State === "running" || c.State === "paused").map((c) => c.Id), "stop", names)),
            btn("Down", "down", () => confirm(`Stop and remove the ${cs.length} container(s) of ${project} and its networks?`) && projectDown(project, ids, names)))));
    };
    async function load() {
      const list = await guarded(() => api("GET", "/containers/json?all=1"));
      if (!list) return;
      names = new Map(list.map((c) => [c.Id, name(c)]));
      for (const id of [...selected]) if (!names.has(id)) selected.delete(id);
      // Standalone containers first, then one group per compose project (by name).
      const groups = new Map();
      for (const c of list) {
        const p = (c.Labels || {})[PROJECT] || "";
        if (!groups.has(p)) groups.set(p, []);
        groups.get(p).push(c);
      }
      const keys = [...groups.keys()].sort();
      for (const b of table.querySelectorAll("tbody")) b.remove();
      for (const p of keys) {
        const cs = groups.get(p);
        table.append(h("tbody", p ? { "data-project": p } : {}, p ? projectHead(p, cs) : null, cs.map(row)));
      }
      if (!list.length) table.append(h("tbody", {}, h("tr", {}, h("td", { colspan: 7 }, "No containers yet."))));
      syncBulk();
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
