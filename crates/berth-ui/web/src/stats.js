// Live CPU and memory of running containers from their /stats streams (one per container).
import { streamJson, encodeName } from "./api.js";

const KEEP = 30;

/** CPU percent as `docker stats` computes it (delta over the sample, times online CPUs). */
export function cpuPercent(s) {
  const cpu = s.cpu_stats || {};
  const pre = s.precpu_stats || {};
  const cd = (cpu.cpu_usage?.total_usage || 0) - (pre.cpu_usage?.total_usage || 0);
  const sd = (cpu.system_cpu_usage || 0) - (pre.system_cpu_usage || 0);
  const n = cpu.online_cpus || cpu.cpu_usage?.percpu_usage?.length || 1;
  return sd > 0 && cd >= 0 ? (cd / sd) * n * 100 : 0;
}

export function memUsage(s) {
  const m = s.memory_stats || {};
  const st = m.stats || {};
  const cache = st.inactive_file ?? st.total_inactive_file ?? st.cache ?? 0;
  return Math.max(0, (m.usage || 0) - cache);
}

/** Streams for a set of container ids; `onSample(id, {cpu:[], mem:[], limit})`. */
export class StatsStreams {
  constructor(onSample) {
    this.onSample = onSample;
    this.streams = new Map(); // id → {abort, cpu, mem, limit}
  }

  /** Follow exactly `ids` (start new streams, stop gone ones). */
  follow(ids) {
    for (const [id, st] of this.streams) {
      if (!ids.includes(id)) {
        st.abort.abort();
        this.streams.delete(id);
      }
    }
    for (const id of ids) {
      if (this.streams.has(id)) continue;
      const st = { abort: new AbortController(), cpu: [], mem: [], limit: 0 };
      this.streams.set(id, st);
      streamJson("GET", `/containers/${encodeName(id)}/stats?stream=1`, (s) => {
        st.cpu.push(cpuPercent(s));
        st.mem.push(memUsage(s));
        st.limit = s.memory_stats?.limit || 0;
        if (st.cpu.length > KEEP) st.cpu.shift();
        if (st.mem.length > KEEP) st.mem.shift();
        this.onSample(id, st);
      }, st.abort.signal).catch(() => this.streams.delete(id));
    }
  }

  get(id) {
    return this.streams.get(id);
  }

  stop() {
    this.follow([]);
  }
}
