// The Engine API through the dashboard's /api proxy: JSON calls, line streams, errors as text.

/** An error the engine (or the proxy) answered, with its message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function onUnauthorized() {
  // The session ended (logout, expiry, a daemon restart): back to the login page.
  location.assign("/login");
}

async function failure(res) {
  let msg = `${res.status} ${res.statusText}`;
  try {
    const j = await res.json();
    if (j && j.message) msg = j.message;
  } catch (_) {
    /* not JSON */
  }
  if (res.status === 401) onUnauthorized();
  return new ApiError(res.status, msg);
}

function init(method, body, signal, extra = {}) {
  const headers = { ...extra, "X-Berth-UI": "1" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    credentials: "same-origin",
  };
}

/** One call; the decoded JSON answer (or null for an empty one). */
export async function api(method, path, body) {
  const res = await fetch("/api" + path, init(method, body));
  if (!res.ok) throw await failure(res);
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/** A streamed answer, as raw chunks: calls onChunk(Uint8Array) until the end or abort. */
export async function streamBytes(method, path, onChunk, signal, body, headers) {
  const res = await fetch("/api" + path, init(method, body, signal, headers));
  if (!res.ok) throw await failure(res);
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    onChunk(value);
  }
}

/** A streamed answer of JSON lines: calls onItem(object) for each. */
export async function streamJson(method, path, onItem, signal, body, headers) {
  const dec = new TextDecoder();
  let buf = "";
  await streamBytes(
    method,
    path,
    (chunk) => {
      buf += dec.decode(chunk, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) onItem(JSON.parse(line));
      }
    },
    signal,
    body,
    headers,
  );
  if (buf.trim()) onItem(JSON.parse(buf));
}

/** Splits Docker's multiplexed stream ([stream,0,0,0,len32] frames) into payloads. */
export function demuxer(onPayload) {
  let pending = new Uint8Array(0);
  return (chunk) => {
    const all = new Uint8Array(pending.length + chunk.length);
    all.set(pending);
    all.set(chunk, pending.length);
    let at = 0;
    while (all.length - at >= 8) {
      const len = new DataView(all.buffer, all.byteOffset + at + 4, 4).getUint32(0);
      if (all.length - at < 8 + len) break;
      onPayload(all[at], all.subarray(at + 8, at + 8 + len));
      at += 8 + len;
    }
    pending = all.slice(at);
  };
}

export const encodeName = (s) => encodeURIComponent(s);

/**
 * The archive API (`docker cp`): HEAD for the stat, GET for a tar stream, PUT to extract a tar
 * into a directory. Returns `{res, stat}` (the stat from `X-Docker-Container-Path-Stat`).
 */
export async function archive(id, method, path, signal, tarBlob) {
  const opts = init(method, undefined, signal, tarBlob ? { "Content-Type": "application/x-tar" } : {});
  opts.body = tarBlob;
  const res = await fetch(`/api/containers/${encodeName(id)}/archive?path=${encodeURIComponent(path)}`, opts);
  if (!res.ok) {
    if (method === "HEAD") {
      // A HEAD answer has no body to carry the engine's message.
      if (res.status === 401) onUnauthorized();
      throw new ApiError(res.status, res.status === 404 ? `${path}: no such file or directory in the container` : `${path}: ${res.status} ${res.statusText}`);
    }
    throw await failure(res);
  }
  const raw = res.headers.get("X-Docker-Container-Path-Stat");
  let stat = null;
  if (raw) {
    const bin = atob(raw);
    stat = JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
  }
  return { res, stat };
}
