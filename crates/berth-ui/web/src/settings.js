// The container page's Settings tab: change a container's ports, environment, volumes,
// restart policy and limits through berth's extension of `POST /containers/{id}/update` —
// ports change live (same process), env and volumes through a managed recreate (same id,
// same writable layer). "Preview" is the API's dry run: what changes and whether it restarts.
import { api, encodeName } from "./api.js";
import { h, guarded } from "./dom.js";
import { lines, parseMem, parseCpus, parsePorts } from "./images.js";

/** `8080:80`, `127.0.0.1:8080:80/udp` lines → PublishAdd entries. */
export function portChanges(text) {
  const { bindings } = parsePorts(text);
  return Object.entries(bindings).flatMap(([cport, bs]) =>
    bs.map((b) => ({ ContainerPort: cport, HostIp: b.HostIp, HostPort: b.HostPort })));
}

/** What the form asks for, as the update body (only what was filled in). */
function body(f, info) {
  const b = {};
  const add = portChanges(f.ports.value);
  if (add.length) b.PublishAdd = add;
  const rmPorts = [...f.root.querySelectorAll("input[data-port-rm]:checked")].map((c) => JSON.parse(c.dataset.portRm));
  if (rmPorts.length) b.PublishRm = rmPorts;
  const env = lines(f.env.value);
  if (env.length) b.EnvAdd = env;
  const envRm = [...f.root.querySelectorAll("input[data-env-rm]:checked")].map((c) => c.dataset.envRm);
  if (envRm.length) b.EnvRm = envRm;
  const binds = lines(f.volumes.value);
  if (binds.length) b.BindsAdd = binds;
  const mountsRm = [...f.root.querySelectorAll("input[data-mount-rm]:checked")].map((c) => c.dataset.mountRm);
  if (mountsRm.length) b.MountsRm = mountsRm;
  if (f.restart.value !== (info.HostConfig?.RestartPolicy?.Name || "no")) {
    b.RestartPolicy = { Name: f.restart.value };
  }
  const mem = f.memory.value.trim() ? parseMem(f.memory.value) : null;
  if (mem !== null) b.Memory = mem;
  const cpus = f.cpus.value.trim() ? parseCpus(f.cpus.value) : null;
  if (cpus !== null) b.NanoCpus = cpus;
  return b;
}

function describe(r) {
  const what = { none: "nothing to change", config: "recorded", live: "applied live, the process kept running", recreate: "applied by a managed recreate (same id and writable layer, new process)" }[r.Action] || r.Action;
  return `${r.DryRun ? "would be " : ""}${what}` + (r.Changes?.length ? `: ${r.Changes.map((c) => c.Field).join(", ")}` : "");
}

export function settingsTab(panel, id, infoOf, last = null) {
  const info = infoOf() || {};
  const f = {};
  const result = h("p", { id: "settings-result", role: "status" });
  const changes = h("pre", { id: "settings-changes", class: "json", hidden: true });
  const field = (label, el, hint) => h("div", { class: "field" }, h("label", { for: el.id }, label), h("div", {}, el, hint ? h("small", {}, ` ${hint}`) : ""));
  f.ports = h("textarea", { id: "settings-ports", rows: 2, placeholder: "8081:80 (one per line)" });
  f.env = h("textarea", { id: "settings-env", rows: 2, placeholder: "KEY=value (one per line)" });
  f.volumes = h("textarea", { id: "settings-volumes", rows: 2, placeholder: "volume:/data or /host:/path (one per line)" });
  f.restart = h("select", { id: "settings-restart" }, ["no", "on-failure", "unless-stopped", "always"].map((r) => h("option", { value: r, selected: r === (info.HostConfig?.RestartPolicy?.Name || "no") }, r)));
  f.memory = h("input", { id: "settings-memory", placeholder: info.HostConfig?.Memory ? String(info.HostConfig.Memory) : "unchanged" });
  f.cpus = h("input", { id: "settings-cpus", placeholder: info.HostConfig?.NanoCpus ? String(info.HostConfig.NanoCpus / 1e9) : "unchanged" });

  const ports = Object.entries(info.HostConfig?.PortBindings || {}).flatMap(([cport, bs]) => (bs || []).map((b) => ({ ContainerPort: cport, HostIp: b.HostIp || "", HostPort: b.HostPort || "" })));
  const current = (title, items) => items.length ? h("fieldset", {}, h("legend", {}, title), items) : "";
  const check = (attrs, label) => h("label", { class: "check" }, h("input", { type: "checkbox", ...attrs }), ` remove ${label}`);
  f.root = h("form", {
    id: "settings-form",
    onsubmit: (e) => e.preventDefault(),
  },
  current("Published ports", ports.map((p) => check({ "data-port-rm": JSON.stringify(p) }, `${p.HostIp ? `${p.HostIp}:` : ""}${p.HostPort}→${p.ContainerPort}`))),
  field("Add ports", f.ports, "applied live"),
  current("Environment", (info.Config?.Env || []).map((e) => e.split("=")[0]).map((k) => check({ "data-env-rm": k }, k))),
  field("Add environment", f.env, "restarts the process"),
  current("Mounts", (info.Mounts || []).map((m) => check({ "data-mount-rm": m.Destination }, `${m.Name || m.Source} on ${m.Destination}`))),
  field("Add volumes", f.volumes, "restarts the process"),
  field("Restart policy", f.restart),
  field("Memory limit", f.memory, "e.g. 256m"),
  field("CPUs", f.cpus, "e.g. 0.5"),
  h("p", { class: "actions" },
    h("button", { type: "button", id: "settings-preview", onclick: () => send(true) }, "Preview"),
    h("button", { type: "button", id: "settings-apply", onclick: () => send(false) }, "Apply")));

  async function send(dry) {
    result.dataset.state = "busy";
    const r = await guarded(() => api("POST", `/containers/${encodeName(id)}/update${dry ? "?dryRun=1" : ""}`, body(f, info)));
    if (!r) {
      result.dataset.state = "error";
      return;
    }
    if (!dry) {
      // Show the container as it is now (new ports, env, mounts) with what was done.
      const fresh = await guarded(() => api("GET", `/containers/${encodeName(id)}/json`));
      if (fresh) {
        panel.replaceChildren();
        settingsTab(panel, id, () => fresh, r);
        return;
      }
    }
    show(r, dry);
  }
  function show(r, dry) {
    result.textContent = describe(r) + (r.Warnings?.length ? ` — ${r.Warnings.join("; ")}` : "");
    result.dataset.state = dry ? "previewed" : "applied";
    result.dataset.action = r.Action || "";
    result.dataset.restart = String(!!r.Restart);
    changes.hidden = !(r.Changes || []).length;
    changes.textContent = JSON.stringify(r.Changes || [], null, 2);
  }
  if (last) show(last, false);
  panel.append(h("p", {}, "Change this container without re-creating it by hand. Ports change live; environment and volumes restart its process, keeping its id, name, logs and files."), f.root, result, changes);
  return null;
}
