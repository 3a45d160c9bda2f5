// The images page: pull with live per-layer progress, the image list (tag, push, history,
// remove), and the "run" form (name, ports, env, volumes, command, restart policy, memory and
// CPU limits).
import { api, streamJson, encodeName } from "./api.js";
import { h, guarded, banner, bytes } from "./dom.js";

/** `img:tag` → fromImage/tag query (a digest or a missing tag pulls as given). */
export function pullQuery(ref) {
  const at = ref.indexOf("@");
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  if (at < 0 && colon > slash) {
    return `fromImage=${encodeURIComponent(ref.slice(0, colon))}&tag=${encodeURIComponent(ref.slice(colon + 1))}`;
  }
  return `fromImage=${encodeURIComponent(ref)}${at < 0 ? "&tag=latest" : ""}`;
}

function pullSection(onDone) {
  const input = h("input", { id: "pull-ref", name: "ref", required: true, placeholder: "registry:5000/busybox:latest", size: 40 });
  const layers = h("ul", { id: "pull-layers", class: "layers", "aria-live": "polite" });
  const status = h("p", { id: "pull-status", role: "status" });
  const rows = new Map();
  const form = h("form", {
    id: "pull-form",
    onsubmit: async (e) => {
      e.preventDefault();
      const ref = input.value.trim();
      if (!ref) return;
      rows.clear();
      layers.replaceChildren();
      status.textContent = `pulling ${ref}…`;
      status.dataset.done = "0";
      let failed = null;
      await guarded(() => streamJson("POST", `/images/create?${pullQuery(ref)}`, (m) => {
        if (m.error || m.errorDetail) {
          failed = m.error || m.errorDetail.message;
          return;
        }
        if (m.id && /^[0-9a-f]{12}$/.test(m.id)) {
          let row = rows.get(m.id);
          if (!row) {
            row = {
              text: h("span", { class: "layer-status" }),
              bar: h("progress", { max: 1, value: 0, "aria-label": `layer ${m.id}` }),
            };
            rows.set(m.id, row);
            layers.append(h("li", { "data-layer": m.id }, h("code", {}, m.id), " ", row.bar, " ", row.text));
          }
          const d = m.progressDetail || {};
          if (d.total) {
            row.bar.max = d.total;
            row.bar.value = d.current || 0;
          } else if (/complete|exists/i.test(m.status)) {
            row.bar.max = 1;
            row.bar.value = 1;
          }
          row.text.textContent = d.total ? `${m.status} ${bytes(d.current || 0)} / ${bytes(d.total)}` : m.status;
          row.text.parentElement.dataset.status = m.status;
        } else if (m.status) {
          status.textContent = m.status;
        }
      }));
      if (failed) banner(`pull ${ref}: ${failed}`);
      status.dataset.done = failed ? "error" : "1";
      onDone();
    },
  },
  h("label", { for: "pull-ref" }, "Image "), input, " ", h("button", { type: "submit", id: "pull-submit" }, "Pull"));
  return h("section", { "aria-labelledby": "pull-h" }, h("h2", { id: "pull-h" }, "Pull an image"), form, status, layers);
}

/** Lines of `a:b` → { "b/tcp": [{HostPort: a}] } (and `ip:a:b`, `a:b/udp`). */
export function parsePorts(text) {
  const exposed = {};
  const bindings = {};
  for (const raw of text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean)) {
    const [spec, proto = "tcp"] = raw.split("/");
    const parts = spec.split(":");
    if (parts.length < 2 || parts.length > 3 || !/^\d+$/.test(parts[parts.length - 1])) {
      throw new Error(`port "${raw}": write host:container, e.g. 8080:80`);
    }
    const cport = parts[parts.length - 1];
    const hport = parts[parts.length - 2];
    const ip = parts.length === 3 ? parts[0] : "";
    const key = `${cport}/${proto}`;
    exposed[key] = {};
    (bindings[key] = bindings[key] || []).push({ HostIp: ip, HostPort: hport });
  }
  return { exposed, bindings };
}

/** Non-empty trimmed lines of a textarea. */
export const lines = (t) => t.split("\n").map((s) => s.trim()).filter(Boolean);

function runSection(images) {
  const f = (id, label, el) => h("div", { class: "field" }, h("label", { for: id }, label), el);
  const image = h("select", { id: "run-image", required: true }, images.flatMap((i) => (i.RepoTags || []).filter((t) => t !== "<none>:<none>").map((t) => h("option", { value: t }, t))));
  const name = h("input", { id: "run-name", placeholder: "optional" });
  const ports = h("textarea", { id: "run-ports", rows: 2, placeholder: "8080:80 (one per line)" });
  const env = h("textarea", { id: "run-env", rows: 2, placeholder: "KEY=value (one per line)" });
  const vols = h("textarea", { id: "run-volumes", rows: 2, placeholder: "volume:/data or /host:/path (one per line)" });
  const cmd = h("input", { id: "run-cmd", placeholder: "optional: run with sh -c" , size: 40 });
  const restart = h("select", { id: "run-restart" }, ["no", "on-failure", "unless-stopped", "always"].map((r) => h("option", { value: r }, r)));
  const mem = h("input", { id: "run-memory", placeholder: "e.g. 256m" });
  const cpus = h("input", { id: "run-cpus", placeholder: "e.g. 0.5", inputmode: "decimal" });
  const form = h("form", {
    id: "run-form",
    onsubmit: async (e) => {
      e.preventDefault();
      const created = await guarded(async () => {
        const { exposed, bindings } = parsePorts(ports.value);
        const body = {
          Image: image.value,
          Env: lines(env.value),
          ExposedPorts: exposed,
          HostConfig: {
            PortBindings: bindings,
            Binds: lines(vols.value),
            RestartPolicy: { Name: restart.value },
            Memory: parseMem(mem.value),
            NanoCpus: parseCpus(cpus.value),
          },
        };
        if (cmd.value.trim()) body.Cmd = ["sh", "-c", cmd.value.trim()];
        const q = name.value.trim() ? `?name=${encodeName(name.value.trim())}` : "";
        const c = await api("POST", `/containers/create${q}`, body);
        try {
          await api("POST", `/containers/${c.Id}/start`);
        } catch (err) {
          throw new Error(`created ${c.Id.slice(0, 12)} but it did not start: ${err.message}`);
        }
        return c;
      });
      if (created) location.hash = `#/containers/${created.Id}`;
    },
  },
  f("run-image", "Image", image), f("run-name", "Name", name), f("run-ports", "Ports", ports),
  f("run-env", "Environment", env), f("run-volumes", "Volumes", vols), f("run-cmd", "Command", cmd),
  f("run-restart", "Restart", restart), f("run-memory", "Memory limit", mem), f("run-cpus", "CPUs", cpus),
  h("button", { type: "submit", id: "run-submit" }, "Run"));
  return h("section", { "aria-labelledby": "run-h" }, h("h2", { id: "run-h" }, "Run a container"), form);
}

/** `0.5` → NanoCpus as `docker run --cpus` sends it (0: no limit). */
export function parseCpus(s) {
  if (!s.trim()) return 0;
  const n = Number(s.trim());
  if (!Number.isFinite(n) || n <= 0) throw new Error(`CPUs "${s}": write a positive number such as 0.5`);
  return Math.round(n * 1e9);
}

/** `256m` → bytes (0: no limit). */
export function parseMem(s) {
  const m = s.trim().toLowerCase().match(/^(\d+(?:\.\d+)?)([kmg]?)b?$/);
  if (!s.trim()) return 0;
  if (!m) throw new Error(`memory "${s}": write a size such as 256m`);
  return Math.round(parseFloat(m[1]) * { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]]);
}

/** `repo[:tag]` → [repo, tag] (the tag after the last colon past the last slash). */
export function splitRef(ref) {
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  return colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, "latest"];
}

/**
 * One image's tag form, push (with live progress) and history. Kept across the list's
 * refreshes (a push's own events refresh it); `setTags` updates the push list.
 */
function imageDetails(img) {
  const tagsOf = (i) => (i.RepoTags || []).filter((t) => t !== "<none>:<none>");
  const tags = tagsOf(img);
  const ref = h("input", { id: `tag-ref-${img.Id.slice(7, 19)}`, "data-field": "tag-ref", placeholder: "registry:5000/name:tag", size: 36, required: true });
  const tagForm = h("form", {
    class: "toolbar",
    onsubmit: async (e) => {
      e.preventDefault();
      const [repo, tag] = splitRef(ref.value.trim());
      await guarded(() => api("POST", `/images/${encodeName(img.Id)}/tag?repo=${encodeURIComponent(repo)}&tag=${encodeURIComponent(tag)}`));
    },
  }, h("label", { for: ref.id }, "New tag "), ref, h("button", { type: "submit", "data-action": "tag" }, "Tag"));

  const which = h("select", { "data-field": "push-ref", "aria-label": "tag to push" }, tags.map((t) => h("option", { value: t }, t)));
  const pushStatus = h("span", { "data-field": "push-status", role: "status" });
  const pushForm = h("form", {
    class: "toolbar",
    onsubmit: async (e) => {
      e.preventDefault();
      const [repo, tag] = splitRef(which.value);
      pushStatus.textContent = `pushing ${which.value}…`;
      pushStatus.dataset.done = "0";
      let failed = null;
      let last = "";
      const layers = new Map();
      await guarded(() => streamJson("POST", `/images/${encodeName(repo)}/push?tag=${encodeURIComponent(tag)}`, (m) => {
        if (m.error || m.errorDetail) failed = m.error || m.errorDetail.message;
        else if (m.id && m.status) layers.set(m.id, m.status);
        else if (m.status) last = m.status;
        const doneN = [...layers.values()].filter((x) => /pushed|exists|mounted/i.test(x)).length;
        pushStatus.textContent = failed || `${doneN}/${layers.size} layers · ${last}`;
      }, undefined, undefined, { "X-Registry-Auth": btoa("{}") }));
      if (failed) banner(`push ${which.value}: ${failed}`);
      pushStatus.dataset.done = failed ? "error" : "1";
    },
  }, h("label", {}, "Push ", which), h("button", { type: "submit", "data-action": "push", disabled: !tags.length }, "Push"), pushStatus);

  const hist = h("table", { class: "history", "data-field": "history" }, h("caption", {}, "History"),
    h("thead", {}, h("tr", {}, ["Created", "Created by", "Size"].map((t) => h("th", { scope: "col" }, t)))));
  guarded(() => api("GET", `/images/${encodeName(img.Id)}/history`)).then((rows) => {
    if (!rows) return;
    hist.append(h("tbody", {}, rows.map((r) => h("tr", {},
      h("td", {}, r.Created ? new Date(r.Created * 1000).toLocaleString() : "–"),
      h("td", {}, h("code", {}, r.CreatedBy || "")),
      h("td", {}, bytes(r.Size || 0))))));
  });
  const el = h("div", { class: "image-details" }, tagForm, pushForm, hist);
  const pushBtn = pushForm.querySelector("button");
  el.setTags = (i) => {
    const now = tagsOf(i);
    const chosen = which.value;
    which.replaceChildren(...now.map((t) => h("option", { value: t }, t)));
    if (now.includes(chosen)) which.value = chosen;
    pushBtn.disabled = !now.length;
  };
  return el;
}

export const imagesPage = {
  render(view) {
    const list = h("div", { id: "images-list" });
    const details = new Map(); // image id → its open details (kept while the list refreshes)
    const runBox = h("div");
    async function load() {
      const imgs = await guarded(() => api("GET", "/images/json"));
      if (!imgs) return;
      for (const id of [...details.keys()]) if (!imgs.some((i) => i.Id === id)) details.delete(id);
      const detailsOf = (i) => {
        let d = details.get(i.Id);
        if (d) d.setTags(i);
        else details.set(i.Id, (d = imageDetails(i)));
        return d;
      };
      const open = new Set([...list.querySelectorAll("tr.image-more:not([hidden])")].map((r) => r.dataset.for));
      list.replaceChildren(h("table", { id: "images" },
        h("caption", {}, "Images"),
        h("thead", {}, h("tr", {}, ["Tags", "ID", "Size", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, imgs.flatMap((i) => {
          const more = h("tr", { class: "image-more", "data-for": i.Id, hidden: !open.has(i.Id) },
            h("td", { colspan: 4 }, open.has(i.Id) ? detailsOf(i) : ""));
          const toggle = h("button", {
            type: "button", "data-action": "more", "aria-expanded": String(open.has(i.Id)),
            onclick: () => {
              const show = more.hidden;
              more.hidden = !show;
              toggle.setAttribute("aria-expanded", String(show));
              more.firstChild.replaceChildren(show ? detailsOf(i) : "");
            },
          }, "Tag, push, history");
          return [h("tr", { "data-id": i.Id, "data-tags": (i.RepoTags || []).join(" ") },
            h("td", {}, (i.RepoTags || ["<none>"]).join(", ")),
            h("td", {}, h("code", {}, i.Id.replace("sha256:", "").slice(0, 12))),
            h("td", {}, bytes(i.Size)),
            h("td", {}, h("span", { class: "actions" }, toggle, h("button", {
              type: "button", "data-action": "remove-image",
              onclick: async () => {
                if (!confirm(`Remove image ${(i.RepoTags || [i.Id])[0]}?`)) return;
                await guarded(() => api("DELETE", `/images/${encodeName(i.Id)}`));
                load();
              },
            }, "Remove")))), more];
        }))));
      runBox.replaceChildren(runSection(imgs));
    }
    view.append(h("h1", {}, "Images"), pullSection(load), runBox, list);
    imagesPage.onEvent = (ev) => {
      if (ev.Type === "image") load();
    };
    load();
    return () => {
      imagesPage.onEvent = null;
    };
  },
  onEvent: null,
};
