// The dashboard's entry: hash routes to pages, one live /events stream that re-renders the
// page, and reconnecting (with the page refreshed) when the daemon comes back.
import "./style.css";
import "@xterm/xterm/css/xterm.css";
import { streamJson } from "./api.js";
import { banner } from "./dom.js";
import { containersPage } from "./containers.js";
import { detailPage } from "./detail.js";
import { imagesPage } from "./images.js";
import { dfPage, eventsPage, networksPage, volumesPage, pushEvent } from "./misc.js";

const routes = [
  [/^#\/containers\/([^/]+)$/, detailPage],
  [/^#\/images$/, imagesPage],
  [/^#\/volumes$/, volumesPage],
  [/^#\/networks$/, networksPage],
  [/^#\/df$/, dfPage],
  [/^#\/events$/, eventsPage],
  [/^(#\/containers)?$/, containersPage],
];

let current = null; // { page, cleanup }

function route() {
  if (current && current.cleanup) current.cleanup();
  banner(null);
  const view = document.getElementById("view");
  view.replaceChildren();
  const hash = location.hash || "";
  for (const [re, page] of routes) {
    const m = hash.match(re);
    if (!m) continue;
    document.querySelectorAll("nav a").forEach((a) => {
      const on = hash.startsWith(a.getAttribute("href")) || (!hash && a.id === "nav-containers");
      if (on) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
    current = { page, cleanup: page.render(view, m.slice(1)) };
    return;
  }
  view.append("No such page.");
  current = null;
}

function setConn(state) {
  const c = document.getElementById("conn");
  c.textContent = state;
  c.dataset.state = state;
}

/** Follow /events forever; each event refreshes the page, a lost stream is retried. */
async function followEvents() {
  let delay = 500;
  for (;;) {
    try {
      const since = Math.floor(Date.now() / 1000);
      await streamJson("GET", `/events?since=${since}`, (ev) => {
        pushEvent(ev);
        if (current && current.page.onEvent) current.page.onEvent(ev);
      });
      // The stream ended: the daemon stopped.
    } catch (_) {
      /* reconnect below */
    }
    setConn("reconnecting…");
    banner("Lost the connection to the daemon; reconnecting…", "warn");
    for (;;) {
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
      try {
        const res = await fetch("/api/_ping", { credentials: "same-origin" });
        if (res.status === 401) {
          location.assign("/login");
          return;
        }
        if (res.ok) break;
      } catch (_) {
        /* still down */
      }
    }
    delay = 500;
    setConn("live");
    route(); // the page's own streams start again
  }
}

async function start() {
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", headers: { "X-Berth-UI": "1" } });
    location.assign("/login");
  });
  window.addEventListener("hashchange", route);
  route();
  setConn("live");
  followEvents();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
