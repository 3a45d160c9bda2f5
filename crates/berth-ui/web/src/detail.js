// One container: state and actions, live stats, logs (follow, search, timestamps), an
// interactive shell (xterm.js over the exec websocket) and its inspect JSON.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { api, streamBytes, demuxer, encodeName } from "./api.js";
import { h, guarded, banner } from "./dom.js";
import { StatsStreams } from "./stats.js";
import { act, portLinks, fillStats } from "./containers.js";

export const detailPage = {
  render(view, [id]) {
    const cleanups = [];
    const head = h("div", { class: "detail-head" });
    const statsCell = h("div", { id: "detail-stats", class: "stats" }, "–");
    const tabs = h("div", { role: "tablist", class: "tabs" });
    const panel = h("section", { id: "tab-panel", role: "tabpanel" });
    view.append(h("p", {}, h("a", { href: "#/containers" }, "← Containers")), head, statsCell, tabs, panel);

    const stats = new StatsStreams((_, st) => fillStats(statsCell, st));
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

    const tabDefs = [["logs", "Logs", logsTab], ["shell", "Shell", shellTab], ["inspect", "Inspect", inspectTab]];
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
