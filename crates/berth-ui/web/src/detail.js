// One container: state and actions, live stats, logs (follow, search, timestamps), an
// interactive shell (xterm.js over the exec websocket), its files (browse, download, upload
// through the archive API, as `docker cp`), its settings (ports, env, volumes, limits through
// `berth update`) and its inspect JSON.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { api, streamBytes, demuxer, encodeName, archive } from "./api.js";
import { h, guarded, banner, bytes, chart } from "./dom.js";
import { readTar, tarFiles } from "./tar.js";
import { settingsTab } from "./settings.js";
import { StatsStreams } from "./stats.js";
import { act, portLinks, fillStats } from "./containers.js";

export const detailPage = {
  render(view, [id]) {
    const cleanups = [];
    const head = h("div", { class: "detail-head" });
    const statsCell = h("div", { id: "detail-stats", class: "stats" }, "–");
    const charts = h("div", { id: "detail-charts", class: "charts" });
    const tabs = h("div", { role: "tablist", class: "tabs" });
    const panel = h("section", { id: "tab-panel", role: "tabpanel" });
    view.append(h("p", {}, h("a", { href: "#/containers" }, "← Containers")), head, statsCell, charts, tabs, panel);

    const stats = new StatsStreams((_, st) => {
      fillStats(statsCell, st);
      charts.replaceChildren(
        chart(st.cpu, { label: "CPU", fmt: (v) => `${v.toFixed(1)}%` }),
        chart(st.mem, { label: "memory", fmt: bytes, limit: info?.HostConfig?.Memory ? st.limit : 0 }));
      charts.dataset.samples = String(st.cpu.length);
    });
    cleanups.push(() => stats.stop());
    let info = null;

    async function load() {
      info = await guarded(() => api("GET", `/containers/${encodeName(id)}/json`));
      if (!info) return;
      const running = info.State.Running && !info.State.Paused;
      const paused = info.State.Paused;
      const nm = info.Name.replace(/^\//, "");
      const ports = Object.entries(info.NetworkSettings?.Ports || {}).flatMap(([k, v]) =>
        (v || []).map((b) => ({ PublicPort: +b.HostPort, PrivatePort: +k.split("/")[0], Type: k.split("/")[1], IP: b.HostIp })));
      const btn = (label, action, show) => show && h("button", {
        type: "button", "data-action": action,
        onclick: async () => {
          const r = await guarded(() => act(info.Id, action));
          if (action === "remove" && r !== undefined) location.hash = "#/containers";
          else load();
        },
      }, label);
      head.replaceChildren(
        h("h1", {}, nm),
        h("p", {}, h("span", { id: "detail-state", class: `state state-${info.State.Status}` }, info.State.Status),
          " · ", info.Config.Image, " · ", portLinks(ports)),
        h("p", { class: "actions" }, btn("Start", "start", !running && !paused),
          btn("Stop", "stop", running || paused), btn("Restart", "restart", running),
          btn("Pause", "pause", running), btn("Unpause", "unpause", paused), btn("Remove", "remove", true)));
      stats.follow(running || paused ? [info.Id] : []);
    }

    const tabDefs = [["logs", "Logs", logsTab], ["shell", "Shell", shellTab], ["files", "Files", filesTab], ["settings", "Settings", settingsTab], ["inspect", "Inspect", inspectTab]];
    let tabCleanup = null;
    function show(key) {
      // A tab that fails to tear down (a terminal mid-render, a closed socket) must not keep
      // the next tab from showing: report it and go on.
      try {
        if (tabCleanup) tabCleanup();
      } catch (e) {
        console.warn("closing the previous tab:", e);
      }
      tabCleanup = null;
      panel.replaceChildren();
      for (const b of tabs.children) b.setAttribute("aria-selected", String(b.dataset.tab === key));
      const def = tabDefs.find((t) => t[0] === key);
      tabCleanup = def[2](panel, id, () => info);
    }
    tabs.replaceChildren(...tabDefs.map(([key, label]) => h("button", {
      type: "button", role: "tab", id: `tab-${key}`, "data-tab": key, "aria-controls": "tab-panel",
      onclick: () => show(key),
    }, label)));
    cleanups.push(() => tabCleanup && tabCleanup());

    detailPage.onEvent = (ev) => {
      if (ev.Type === "container" && ev.Actor && ev.Actor.ID === (info ? info.Id : id)) load();
    };
    load().then(() => show("logs"));
    return () => {
      cleanups.forEach((f) => f());
      detailPage.onEvent = null;
    };
  },
  onEvent: null,
};

function logsTab(panel, id, info) {
  const abort = new AbortController();
  const pre = h("pre", { id: "logs", class: "logs", tabindex: "0", "aria-label": "container logs" });
  const follow = h("input", { type: "checkbox", id: "logs-follow", checked: true });
  const stamps = h("input", { type: "checkbox", id: "logs-timestamps" });
  const search = h("input", { type: "search", id: "logs-search", placeholder: "filter lines" });
  let lines = [];
  const render = () => {
    const q = search.value;
    pre.textContent = (q ? lines.filter((l) => l.includes(q)) : lines).join("\n");
    if (follow.checked) pre.scrollTop = pre.scrollHeight;
  };
  search.addEventListener("input", render);
  let stream = null;
  const start = () => {
    if (stream) stream.abort();
    stream = new AbortController();
    abort.signal.addEventListener("abort", () => stream.abort());
    lines = [];
    render();
    const dec = new TextDecoder();
    let partial = "";
    const onText = (bytes) => {
      partial += dec.decode(bytes, { stream: true });
      const parts = partial.split("\n");
      partial = parts.pop();
      lines.push(...parts);
      if (lines.length > 5000) lines = lines.slice(-5000);
      render();
    };
    const tty = info() && info().Config.Tty;
    const q = `follow=${follow.checked ? 1 : 0}&stdout=1&stderr=1&tail=500&timestamps=${stamps.checked ? 1 : 0}`;
    streamBytes("GET", `/containers/${encodeName(id)}/logs?${q}`, tty ? onText : demuxer((_, p) => onText(p)), stream.signal)
      .catch((e) => e.name !== "AbortError" && banner(e.message));
  };
  follow.addEventListener("change", start);
  stamps.addEventListener("change", start);
  panel.append(h("div", { class: "toolbar" },
    h("label", {}, follow, " Follow"), h("label", {}, stamps, " Timestamps"),
    h("label", { for: "logs-search", class: "sr-only" }, "Filter"), search), pre);
  start();
  return () => abort.abort();
}

function shellTab(panel, id, info) {
  const box = h("div", { id: "terminal", class: "terminal" });
  const cmd = h("input", { id: "shell-cmd", value: "sh", "aria-label": "shell command" });
  const status = h("span", { id: "shell-status", role: "status" }, "");
  let ws = null;
  let term = null;
  let resizeObs = null;
  const close = () => {
    // Observer first (its callback fits the terminal), then the socket (its messages write to
    // the terminal), then the terminal itself.
    const [o, s, t] = [resizeObs, ws, term];
    ws = term = resizeObs = null;
    if (o) o.disconnect();
    if (s) {
      s.onopen = s.onmessage = s.onclose = s.onerror = null;
      s.close();
    }
    if (t) t.dispose();
  };
  async function open() {
    close();
    box.replaceChildren();
    if (info() && !info().State.Running) {
      status.textContent = "the container is not running";
      return;
    }
    term = new Terminal({ cursorBlink: true, convertEol: false, fontSize: 14, screenReaderMode: false });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box);
    fit.fit();
    const t = term;
    const exec = await guarded(() => api("POST", `/containers/${encodeName(id)}/exec`, {
      AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: true,
      Cmd: cmd.value.trim().split(/\s+/), Env: [`COLUMNS=${term.cols}`, `LINES=${term.rows}`],
    }));
    // The tab may have been left (or reopened) while the exec was being created.
    if (!exec || term !== t) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const sock = new WebSocket(`${scheme}://${location.host}/api/berth/exec/${exec.Id}/ws?tty=1`);
    ws = sock;
    sock.binaryType = "arraybuffer";
    sock.onopen = () => {
      status.textContent = "connected";
      box.dataset.connected = "1";
      const resize = () => {
        fit.fit();
        api("POST", `/exec/${exec.Id}/resize?h=${t.rows}&w=${t.cols}`).catch(() => {});
      };
      resize();
      resizeObs = new ResizeObserver(resize);
      resizeObs.observe(box);
      t.focus();
    };
    sock.onmessage = (m) => t.write(new Uint8Array(m.data));
    sock.onclose = () => {
      status.textContent = "session ended";
      box.dataset.connected = "0";
    };
    sock.onerror = () => banner("the shell's connection failed");
    t.onData((d) => sock.readyState === 1 && sock.send(new TextEncoder().encode(d)));
  }
  panel.append(h("div", { class: "toolbar" },
    h("button", { type: "button", id: "shell-open", onclick: open }, "New session"), cmd, status), box);
  open();
  return close;
}

function inspectTab(panel, id) {
  const pre = h("pre", { id: "inspect", class: "json", tabindex: "0" }, "…");
  panel.append(pre);
  guarded(() => api("GET", `/containers/${encodeName(id)}/json`)).then((j) => {
    if (j) pre.textContent = JSON.stringify(j, null, 2);
  });
  return null;
}

const GO_MODE_DIR = 2 ** 31;
const GO_MODE_SYMLINK = 2 ** 27;
/** At most this much of a directory's archive is read to list it. */
const LIST_BYTES = 64 * 1024 * 1024;
const LIST_ENTRIES = 5000;

const joinPath = (dir, name) => (dir.endsWith("/") ? dir : `${dir}/`) + name;
const parentOf = (p) => p.replace(/\/+$/, "").replace(/\/[^/]*$/, "") || "/";

function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

function filesTab(panel, id) {
  const path = h("input", { id: "files-path", value: "/", size: 40, "aria-label": "path in the container" });
  const status = h("span", { id: "files-status", role: "status" });
  const upload = h("input", { type: "file", id: "files-upload", multiple: true, "aria-label": "upload files into this directory" });
  const tbody = h("tbody");
  const table = h("table", { id: "files" },
    h("thead", {}, h("tr", {}, ["Name", "Type", "Size", "Mode", "Modified", ""].map((t) => h("th", { scope: "col" }, t)))),
    tbody);
  let abort = null;
  let dir = "/";

  async function list(p) {
    if (abort) abort.abort();
    abort = new AbortController();
    const signal = abort.signal;
    status.textContent = `reading ${p}…`;
    status.dataset.state = "loading";
    const res = await guarded(() => archive(id, "HEAD", p, signal));
    if (!res) {
      status.textContent = "";
      status.dataset.state = "error";
      return;
    }
    if (res.stat.mode & GO_MODE_SYMLINK && res.stat.linkTarget) return list(res.stat.linkTarget);
    if (!(res.stat.mode & GO_MODE_DIR)) {
      // A file: list its directory and keep the name typed.
      return list(parentOf(p));
    }
    dir = p;
    path.value = p;
    const rows = [];
    let read = 0;
    let truncated = false;
    const ok = await guarded(async () => {
      const body = await archive(id, "GET", p, signal);
      const reader = body.res.body.getReader();
      const root = res.stat.name;
      try {
        await readTar(reader, (e) => {
          read += 512 + e.size;
          const parts = e.name.split("/").filter((x) => x && x !== ".");
          if (parts[0] === root || (root === "/" && parts[0] === "")) parts.shift();
          if (parts.length === 1) rows.push({ ...e, base: parts[0] });
          if (rows.length >= LIST_ENTRIES || read > LIST_BYTES) {
            truncated = true;
            return "stop";
          }
          return false;
        });
      } finally {
        reader.cancel().catch(() => {});
      }
      return true;
    });
    if (!ok || signal.aborted) return;
    rows.sort((a, b) => (a.type === "dir") !== (b.type === "dir") ? (a.type === "dir" ? -1 : 1) : a.base.localeCompare(b.base));
    const up = p === "/" ? [] : [h("tr", { "data-name": ".." }, h("td", { colspan: 6 },
      h("button", { type: "button", class: "link", onclick: () => list(parentOf(p)) }, "↑ ..")))];
    tbody.replaceChildren(...up, ...rows.map((e) => {
      const full = joinPath(p, e.base);
      const nameCell = e.type === "dir" || e.type === "symlink"
        ? h("button", { type: "button", class: "link", onclick: () => list(full) }, e.base + (e.type === "dir" ? "/" : ""))
        : e.base;
      return h("tr", { "data-name": e.base, "data-type": e.type, "data-size": String(e.size) },
        h("td", {}, nameCell, e.type === "symlink" ? h("small", {}, ` → ${e.linkname}`) : ""),
        h("td", {}, e.type),
        h("td", {}, e.type === "file" ? bytes(e.size) : "–"),
        h("td", {}, h("code", {}, (e.mode & 0o7777).toString(8).padStart(4, "0"))),
        h("td", {}, e.mtime ? new Date(e.mtime * 1000).toLocaleString() : "–"),
        h("td", {}, e.type === "file" || e.type === "dir"
          ? h("button", { type: "button", "data-action": "download", "aria-label": `download ${e.base}`, onclick: () => download(full, e) }, "Download")
          : ""));
    }));
    if (!rows.length) tbody.append(h("tr", {}, h("td", { colspan: 6 }, "Empty directory.")));
    status.textContent = `${rows.length} entr${rows.length === 1 ? "y" : "ies"} in ${p}` +
      (truncated ? ` (only the first ${rows.length}: the directory is too large to list whole)` : "");
    status.dataset.state = "done";
  }

  async function download(full, e) {
    await guarded(async () => {
      const { res } = await archive(id, "GET", full);
      if (e.type === "dir") {
        saveBlob(await res.blob(), `${e.base}.tar`);
        return;
      }
      let file = null;
      await readTar(res.body.getReader(), (x) => (x.type === "file" && !file ? true : false), (x) => { file = x; });
      if (!file) throw new Error(`${full}: the archive held no regular file`);
      saveBlob(new Blob([file.data]), e.base);
    });
  }

  upload.addEventListener("change", async () => {
    if (!upload.files.length) return;
    const names = [...upload.files].map((f) => f.name).join(", ");
    const ok = await guarded(async () => {
      await archive(id, "PUT", dir, undefined, await tarFiles(upload.files));
      return true;
    });
    upload.value = "";
    if (ok) {
      await list(dir);
      status.textContent = `uploaded ${names} to ${dir}`;
    }
  });

  panel.append(h("form", {
    class: "toolbar",
    onsubmit: (ev) => {
      ev.preventDefault();
      list(path.value.trim() || "/");
    },
  }, h("label", { for: "files-path" }, "Path "), path, h("button", { type: "submit", id: "files-go" }, "Open"),
  h("label", { for: "files-upload" }, "Upload here "), upload, status), table);
  list("/");
  return () => abort && abort.abort();
}
