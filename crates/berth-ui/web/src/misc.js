// Smaller pages: volumes (list, create, remove), networks (list, create, remove), disk usage
// with prune, and the live events feed.
import { api, encodeName } from "./api.js";
import { h, guarded, bytes } from "./dom.js";

const recent = [];

/** Every event the main stream sees (the feed shows the last 200). */
export function pushEvent(ev) {
  recent.push(ev);
  if (recent.length > 200) recent.shift();
  if (eventsPage.list) eventsPage.list.prepend(eventRow(ev));
}

function eventRow(ev) {
  const t = new Date((ev.timeNano ? ev.timeNano / 1e6 : ev.time * 1000)).toLocaleTimeString();
  const who = ev.Actor?.Attributes?.name || (ev.Actor?.ID || "").slice(0, 12);
  return h("li", {}, h("time", {}, t), " ", h("strong", {}, ev.Type), " ", ev.Action, " ", who);
}

export const eventsPage = {
  list: null,
  render(view) {
    const list = h("ul", { id: "events", class: "events", "aria-live": "polite" }, [...recent].reverse().map(eventRow));
    eventsPage.list = list;
    view.append(h("h1", {}, "Events"), h("p", {}, "Live from the engine, newest first."), list);
    return () => {
      eventsPage.list = null;
    };
  },
};

export const volumesPage = {
  render(view) {
    const body = h("div");
    const name = h("input", { id: "volume-name", placeholder: "name (optional)" });
    async function load() {
      const r = await guarded(() => api("GET", "/volumes"));
      if (!r) return;
      body.replaceChildren(h("table", { id: "volumes" },
        h("thead", {}, h("tr", {}, ["Name", "Driver", "Mountpoint", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, (r.Volumes || []).map((v) => h("tr", {},
          h("td", {}, v.Name), h("td", {}, v.Driver), h("td", {}, h("code", {}, v.Mountpoint)),
          h("td", {}, h("button", {
            type: "button",
            onclick: async () => {
              await guarded(() => api("DELETE", `/volumes/${encodeName(v.Name)}`));
              load();
            },
          }, "Remove")))))));
    }
    view.append(h("h1", {}, "Volumes"), h("form", {
      onsubmit: async (e) => {
        e.preventDefault();
        await guarded(() => api("POST", "/volumes/create", { Name: name.value.trim() }));
        load();
      },
    }, h("label", { for: "volume-name" }, "New volume "), name, " ", h("button", { type: "submit" }, "Create")), body);
    volumesPage.onEvent = (ev) => ev.Type === "volume" && load();
    load();
    return () => {
      volumesPage.onEvent = null;
    };
  },
  onEvent: null,
};

export const networksPage = {
  render(view) {
    const body = h("div");
    async function load() {
      const nets = await guarded(() => api("GET", "/networks"));
      if (!nets) return;
      body.replaceChildren(h("table", { id: "networks" },
        h("thead", {}, h("tr", {}, ["Name", "Driver", "Subnet", "Containers", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, nets.map((n) => h("tr", { "data-name": n.Name },
          h("td", {}, n.Name), h("td", {}, n.Driver),
          h("td", {}, (n.IPAM?.Config || []).map((c) => c.Subnet).filter(Boolean).join(", ") || "–"),
          h("td", {}, String(Object.keys(n.Containers || {}).length)),
          h("td", {}, ["bridge", "host", "none"].includes(n.Name) ? "" : h("button", {
            type: "button", "data-action": "remove-network", "aria-label": `remove network ${n.Name}`,
            onclick: async () => {
              if (!confirm(`Remove network ${n.Name}?`)) return;
              await guarded(() => api("DELETE", `/networks/${encodeName(n.Id)}`));
              load();
            },
          }, "Remove")))))));
    }
    const netName = h("input", { id: "network-name", required: true, placeholder: "name" });
    const subnet = h("input", { id: "network-subnet", placeholder: "subnet (optional), e.g. 10.9.0.0/24" });
    const internal = h("input", { type: "checkbox", id: "network-internal" });
    view.append(h("h1", {}, "Networks"), h("form", {
      class: "toolbar",
      onsubmit: async (e) => {
        e.preventDefault();
        const body = { Name: netName.value.trim(), Driver: "bridge", Internal: internal.checked, CheckDuplicate: true };
        if (subnet.value.trim()) body.IPAM = { Config: [{ Subnet: subnet.value.trim() }] };
        const r = await guarded(() => api("POST", "/networks/create", body));
        if (r) netName.value = "";
        load();
      },
    }, h("label", { for: "network-name" }, "New network "), netName, subnet,
    h("label", { for: "network-internal" }, internal, " internal"), h("button", { type: "submit", id: "network-create" }, "Create")), body);
    networksPage.onEvent = (ev) => ev.Type === "network" && load();
    load();
    return () => {
      networksPage.onEvent = null;
    };
  },
  onEvent: null,
};

export const dfPage = {
  render(view) {
    const body = h("div");
    async function load() {
      const df = await guarded(() => api("GET", "/system/df"));
      if (!df) return;
      const sum = (xs, f) => (xs || []).reduce((a, x) => a + (f(x) || 0), 0);
      const rows = [
        ["Images", (df.Images || []).length, sum(df.Images, (i) => i.Size)],
        ["Containers", (df.Containers || []).length, sum(df.Containers, (c) => c.SizeRw)],
        ["Volumes", (df.Volumes || []).length, sum(df.Volumes, (v) => v.UsageData?.Size)],
        ["Build cache", (df.BuildCache || []).length, sum(df.BuildCache, (b) => b.Size)],
      ];
      body.replaceChildren(h("table", { id: "df" },
        h("thead", {}, h("tr", {}, ["Type", "Count", "Size", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows.map(([t, n, size]) => h("tr", { "data-type": t }, h("td", {}, t), h("td", {}, String(n)), h("td", {}, bytes(size)),
          h("td", {}, pruneButton(t)))))));
    }
    /** What `docker <type> prune` removes: stopped containers, dangling images, unused volumes
     * (anonymous ones, as docker 23+), unused build cache. */
    const PRUNE = {
      Containers: ["/containers/prune", "stopped containers", (r) => (r.ContainersDeleted || []).length],
      Images: ["/images/prune", "dangling images", (r) => (r.ImagesDeleted || []).length],
      Volumes: ["/volumes/prune", "unused anonymous volumes", (r) => (r.VolumesDeleted || []).length],
      "Build cache": ["/build/prune", "unused build cache", (r) => (r.CachesDeleted || []).length],
    };
    function pruneButton(type) {
      const [path, what, countOf] = PRUNE[type];
      return h("button", {
        type: "button", "data-prune": type, "aria-label": `remove ${what}`,
        onclick: async (e) => {
          if (!confirm(`Remove all ${what}?`)) return;
          e.target.disabled = true;
          const r = await guarded(() => api("POST", path));
          e.target.disabled = false;
          if (r) {
            note.textContent = `removed ${countOf(r)} ${what}, reclaimed ${bytes(r.SpaceReclaimed || 0)}`;
            note.dataset.type = type;
          }
          load();
        },
      }, "Prune");
    }
    const note = h("p", { id: "prune-result", role: "status" });
    view.append(h("h1", {}, "Disk usage"), note, body);
    dfPage.onEvent = (ev) => ["image", "container", "volume"].includes(ev.Type) && load();
    load();
    return () => {
      dfPage.onEvent = null;
    };
  },
  onEvent: null,
};
