// Just enough tar for the files tab: read the entries of `GET …/archive` as they stream in
// (ustar, GNU long names, PAX paths and sizes) and write uploads as a ustar (+PAX) archive.

const BLOCK = 512;
const enc = new TextEncoder();
const dec = new TextDecoder();

function field(h, off, len) {
  const b = h.subarray(off, off + len);
  const end = b.indexOf(0);
  return dec.decode(end < 0 ? b : b.subarray(0, end));
}

function octal(h, off, len) {
  // GNU base-256 for big numbers: the top bit of the first byte is set.
  if (h[off] & 0x80) {
    let n = 0;
    for (let i = off + 1; i < off + len; i++) n = n * 256 + h[i];
    return n;
  }
  const s = field(h, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function paxRecords(bytes) {
  const out = {};
  let i = 0;
  while (i < bytes.length) {
    const sp = bytes.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(dec.decode(bytes.subarray(i, sp)), 10);
    if (!len) break;
    const rec = dec.decode(bytes.subarray(sp + 1, i + len - 1));
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

const TYPES = { "0": "file", "\0": "file", "": "file", "1": "link", "2": "symlink", "5": "dir", "3": "char", "4": "block", "6": "fifo" };

/**
 * Read a tar stream (a ReadableStream reader of Uint8Array chunks). Calls
 * `onEntry({name, type, size, mode, mtime, linkname})` for each entry; when it returns true the
 * entry's bytes are read into `entry.data` and `onData(entry)` is called. Stops early when
 * `onEntry` returns "stop".
 */
export async function readTar(reader, onEntry, onData = () => {}) {
  // Chunks as they came, and how many bytes they hold (no re-copying of what is buffered).
  const chunks = [];
  let have = 0;
  let done = false;
  async function need(n) {
    while (have < n && !done) {
      const r = await reader.read();
      if (r.done) done = true;
      else if (r.value.length) {
        chunks.push(r.value);
        have += r.value.length;
      }
    }
    return have >= n;
  }
  /** The next n buffered bytes (copied only when kept). */
  function take(n, keep = true) {
    const out = keep ? new Uint8Array(n) : null;
    let at = 0;
    while (at < n) {
      const c = chunks[0];
      const k = Math.min(c.length, n - at);
      if (out) out.set(c.subarray(0, k), at);
      at += k;
      if (k === c.length) chunks.shift();
      else chunks[0] = c.subarray(k);
    }
    have -= n;
    return out;
  }
  let pax = {};
  let longName = null;
  let longLink = null;
  for (;;) {
    if (!(await need(BLOCK))) return;
    const h = take(BLOCK);
    if (h.every((b) => b === 0)) return;
    const type = String.fromCharCode(h[156]);
    let size = octal(h, 124, 12);
    if (pax.size) size = parseInt(pax.size, 10);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x" || type === "L" || type === "K" || type === "g") {
      if (!(await need(padded))) throw new Error("the archive ends inside an extended header");
      const body = take(padded).slice(0, size);
      if (type === "x") pax = paxRecords(body);
      else if (type === "L") longName = field(body, 0, body.length);
      else if (type === "K") longLink = field(body, 0, body.length);
      continue;
    }
    const prefix = field(h, 345, 155);
    const base = field(h, 0, 100);
    const entry = {
      name: pax.path || longName || (prefix ? `${prefix}/${base}` : base),
      type: TYPES[type] || "other",
      size,
      mode: octal(h, 100, 8),
      mtime: pax.mtime ? Math.floor(parseFloat(pax.mtime)) : octal(h, 136, 12),
      linkname: pax.linkpath || longLink || field(h, 157, 100),
    };
    pax = {};
    longName = longLink = null;
    const want = onEntry(entry);
    if (want === "stop") return;
    if (want === true) {
      if (!(await need(padded))) throw new Error(`the archive ends inside ${entry.name}`);
      entry.data = take(padded).slice(0, size);
      onData(entry);
    } else {
      // Skip the body without keeping it.
      let left = padded;
      while (left > 0) {
        if (!have && !(await need(1))) throw new Error(`the archive ends inside ${entry.name}`);
        const n = Math.min(left, have);
        take(n, false);
        left -= n;
      }
    }
  }
}

function header(name, size, mode, mtime, type) {
  const h = new Uint8Array(BLOCK);
  const put = (off, len, s) => h.set(enc.encode(s).subarray(0, len), off);
  const num = (off, len, n) => put(off, len, n.toString(8).padStart(len - 1, "0") + "\0");
  put(0, 100, name);
  num(100, 8, mode);
  num(108, 8, 0);
  num(116, 8, 0);
  num(124, 12, size);
  num(136, 12, mtime);
  h.fill(0x20, 148, 156);
  h[156] = type.charCodeAt(0);
  put(257, 6, "ustar\0");
  put(263, 2, "00");
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

function paxHeader(path) {
  // "<len> path=<value>\n", where len counts itself.
  const rest = ` path=${path}\n`;
  let len = enc.encode(rest).length + 1;
  while (String(len).length + enc.encode(rest).length !== len) len++;
  const body = enc.encode(`${len}${rest}`);
  return [header("PaxHeader", body.length, 0o644, 0, "x"), pad(body)];
}

function pad(bytes) {
  const out = new Uint8Array(Math.ceil(bytes.length / BLOCK) * BLOCK);
  out.set(bytes);
  return out;
}

/** Browser `File`s → one tar archive (a Blob), each file at the archive's top level. */
export async function tarFiles(files) {
  const parts = [];
  for (const f of files) {
    const name = f.name.replace(/^.*[\\/]/, "");
    if (!name || name === "." || name === "..") throw new Error(`cannot upload a file named "${f.name}"`);
    const data = new Uint8Array(await f.arrayBuffer());
    const mtime = Math.floor((f.lastModified || Date.now()) / 1000);
    if (enc.encode(name).length > 99) parts.push(...paxHeader(name));
    parts.push(header(name.slice(0, 99), data.length, 0o644, mtime, "0"), pad(data));
  }
  parts.push(new Uint8Array(BLOCK * 2));
  return new Blob(parts, { type: "application/x-tar" });
}
