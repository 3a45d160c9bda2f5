//! `berth stats`, as docker's CLI does it: one stats stream per container (collected
//! concurrently), a table every 500 ms from the latest sample of each, and without container
//! arguments the set follows the daemon's events (started containers join, dead ones leave
//! unless `--all`). `--no-stream` waits for one sample of each and prints one table.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_client::jsonstream::JsonSplitter;
use berth_client::{body, Client};
use hyper::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{path_name, Query};
use crate::cli::StatsArgs;
use crate::exit::describe;
use crate::format::{short_id, Lister};
use crate::units::{bytes_size, human_size_prec};

/// docker's CLI redraws this often (the daemon samples once a second).
const FRAME: Duration = Duration::from_millis(500);

/// One `docker stats` row from a stats sample.
pub fn stats_row(v: &Value, no_trunc: bool) -> Value {
    let f = |p: &Value| p.as_f64().unwrap_or(0.0);
    let cpu_delta = f(&v["cpu_stats"]["cpu_usage"]["total_usage"])
        - f(&v["precpu_stats"]["cpu_usage"]["total_usage"]);
    let sys_delta =
        f(&v["cpu_stats"]["system_cpu_usage"]) - f(&v["precpu_stats"]["system_cpu_usage"]);
    let cpus = v["cpu_stats"]["online_cpus"]
        .as_f64()
        .or_else(|| {
            v["cpu_stats"]["cpu_usage"]["percpu_usage"]
                .as_array()
                .map(|a| a.len() as f64)
        })
        .unwrap_or(1.0);
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    };
    let cache = v["memory_stats"]["stats"]["total_inactive_file"]
        .as_f64()
        .or(v["memory_stats"]["stats"]["inactive_file"].as_f64())
        .unwrap_or(0.0);
    let mem = (f(&v["memory_stats"]["usage"]) - cache).max(0.0);
    let limit = f(&v["memory_stats"]["limit"]);
    let mem_pct = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in v["networks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        rx += f(&n["rx_bytes"]);
        tx += f(&n["tx_bytes"]);
    }
    let (mut br, mut bw) = (0.0, 0.0);
    for e in v["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => br += f(&e["value"]),
            Some("write") => bw += f(&e["value"]),
            _ => {}
        }
    }
    let id = v["id"].as_str().unwrap_or_default();
    json!({
        "Container": if no_trunc { id.to_string() } else { short_id(id) },
        "ID": if no_trunc { id.to_string() } else { short_id(id) },
        "Name": v["name"].as_str().unwrap_or_default().trim_start_matches('/'),
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(mem), bytes_size(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": format!("{} / {}", human_size_prec(rx, 3), human_size_prec(tx, 3)),
        "BlockIO": format!("{} / {}", human_size_prec(br, 3), human_size_prec(bw, 3)),
        "PIDs": v["pids_stats"]["current"].as_i64().unwrap_or(0).to_string(),
    })
}

/// A row whose stream ended or failed: docker shows "--" for every figure.
fn invalid_row(last: Option<&Value>, container: &str) -> Value {
    let keep = |k: &str| {
        last.and_then(|r| r[k].as_str().map(String::from))
            .unwrap_or_default()
    };
    let name = keep("Name");
    json!({
        "Container": container,
        "ID": keep("ID"),
        "Name": if name.is_empty() { "--".to_string() } else { name },
        "CPUPerc": "--",
        "MemUsage": "-- / --",
        "MemPerc": "--",
        "NetIO": "--",
        "BlockIO": "--",
        "PIDs": "--",
    })
}

const STATS: Lister = Lister {
    default_table: "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ],
};

/// A watched container: the key it was added under (argument or short ID), its latest row.
struct Entry {
    key: String,
    row: Option<Value>,
    error: Option<String>,
    task: tokio::task::AbortHandle,
}

/// The watched containers, in the order they were added (docker's row order).
#[derive(Clone)]
struct Watched {
    c: Client,
    stream: bool,
    no_trunc: bool,
    entries: Arc<Mutex<Vec<Entry>>>,
    /// One message per collector once it has its first sample (or has failed).
    first: mpsc::UnboundedSender<()>,
}

impl Watched {
    /// Start collecting `key` unless it is already watched; true when added.
    fn add(&self, key: &str) -> bool {
        let mut entries = self.entries.lock().unwrap();
        if entries.iter().any(|e| e.key == key) {
            return false;
        }
        let task = tokio::spawn(self.clone().collect(key.to_string())).abort_handle();
        entries.push(Entry {
            key: key.to_string(),
            row: None,
            error: None,
            task,
        });
        true
    }

    fn remove(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap();
        if let Some(i) = entries.iter().position(|e| e.key == key) {
            entries.remove(i).task.abort();
        }
    }

    fn update(&self, key: &str, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self
            .entries
            .lock()
            .unwrap()
            .iter_mut()
            .find(|e| e.key == key)
        {
            f(e);
        }
    }

    /// Read `key`'s stats stream (one sample with --no-stream) into its row.
    async fn collect(self, key: String) {
        let q = Query::new().add("stream", if self.stream { "1" } else { "0" });
        let path = q.on(&format!("/containers/{}/stats", path_name(&key)));
        let mut first = true;
        match self.c.stream(Method::GET, &path, body::empty(), &[]).await {
            Err(e) => {
                let msg = describe(&e.into());
                self.update(&key, |en| en.error = Some(msg));
            }
            Ok(mut s) => {
                let mut split = JsonSplitter::new();
                while let Ok(Some(chunk)) = s.next_chunk().await {
                    for v in split.push(&chunk) {
                        let row = stats_row(&v, self.no_trunc);
                        self.update(&key, |en| en.row = Some(row));
                        if std::mem::take(&mut first) {
                            let _ = self.first.send(());
                        }
                    }
                }
                // The stream ended (the container stopped, or the daemon went away).
                if self.stream {
                    self.update(&key, |en| en.row = Some(invalid_row(en.row.as_ref(), &key)));
                }
            }
        }
        if first {
            let _ = self.first.send(());
        }
    }

    fn rows(&self) -> Vec<Value> {
        let entries = self.entries.lock().unwrap();
        entries.iter().filter_map(|e| e.row.clone()).collect()
    }

    fn stop_all(&self) {
        for e in self.entries.lock().unwrap().iter() {
            e.task.abort();
        }
    }
}

/// Follow container events: started (or, with --all, created) containers join, dead ones
/// leave unless --all. Returns when the event stream fails or ends.
async fn follow_events(
    w: Watched,
    all: bool,
    mut s: berth_client::ResponseStream,
) -> anyhow::Result<()> {
    let mut split = JsonSplitter::new();
    while let Some(chunk) = s.next_chunk().await? {
        for e in split.push(&chunk) {
            let id = e["id"]
                .as_str()
                .or(e["Actor"]["ID"].as_str())
                .unwrap_or_default();
            let key = short_id(id);
            match e["Action"].as_str().or(e["status"].as_str()) {
                Some("start") => drop(w.add(&key)),
                Some("create") if all => drop(w.add(&key)),
                Some("die") if !all => w.remove(&key),
                _ => {}
            }
        }
    }
    Ok(())
}

pub async fn stats(c: &Client, a: StatsArgs) -> anyhow::Result<()> {
    let (first_tx, mut first_rx) = mpsc::unbounded_channel();
    let w = Watched {
        c: c.clone(),
        stream: !a.no_stream,
        no_trunc: a.no_trunc,
        entries: Arc::new(Mutex::new(Vec::new())),
        first: first_tx,
    };
    let show_all = a.containers.is_empty();
    let mut events = None;
    let mut initial = 0;
    if show_all {
        // Subscribe before listing so that no container started in between is missed.
        let q = Query::new().raw(
            "filters",
            crate::opts::filters_query(&["type=container".to_string()])
                .map_err(|e| crate::exit::Exit::msg(125, e))?,
        );
        let s = c
            .stream(Method::GET, &q.on("/events"), body::empty(), &[])
            .await?;
        let q = Query::new().flag("all", a.all);
        let list: Vec<Value> = c.get_json(&q.on("/containers/json")).await?;
        for ct in &list {
            if w.add(&short_id(ct["Id"].as_str().unwrap_or_default())) {
                initial += 1;
            }
        }
        events = Some(tokio::spawn(follow_events(w.clone(), a.all, s)));
    } else {
        for name in &a.containers {
            if w.add(name) {
                initial += 1;
            }
        }
    }
    // Every container given (or running at the start) has its first sample.
    for _ in 0..initial {
        if first_rx.recv().await.is_none() {
            break;
        }
    }
    if !show_all {
        let errs: Vec<String> = w
            .entries
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| e.error.clone())
            .collect();
        if !errs.is_empty() {
            w.stop_all();
            return super::all_ok(errs);
        }
    }
    let r = frames(&w, &a, show_all, events.as_mut()).await;
    w.stop_all();
    if let Some(ev) = events {
        ev.abort();
    }
    r
}

/// A table every [`FRAME`] (cleared first on a terminal), once with --no-stream.
async fn frames(
    w: &Watched,
    a: &StatsArgs,
    show_all: bool,
    mut events: Option<&mut tokio::task::JoinHandle<anyhow::Result<()>>>,
) -> anyhow::Result<()> {
    let tty = crate::tty::stdout_is_tty();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + FRAME, FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        match events.as_deref_mut() {
            Some(ev) => {
                tokio::select! {
                    _ = tick.tick() => {}
                    r = ev => return r.unwrap_or(Ok(())),
                }
            }
            None => drop(tick.tick().await),
        }
        if !a.no_stream && tty {
            print!("\x1b[2J\x1b[H");
        }
        let rows = w.rows();
        STATS.print(a.format.as_deref(), &rows)?;
        std::io::stdout().flush()?;
        if a.no_stream || (!show_all && w.entries.lock().unwrap().is_empty()) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_math() {
        let v = json!({"id":"abcdef0123456789","name":"/x",
            "cpu_stats":{"cpu_usage":{"total_usage":200},"system_cpu_usage":1000,"online_cpus":2},
            "precpu_stats":{"cpu_usage":{"total_usage":100},"system_cpu_usage":500},
            "memory_stats":{"usage":2048,"limit":4096,"stats":{"total_inactive_file":1024}},
            "pids_stats":{"current":3}});
        let r = stats_row(&v, false);
        assert_eq!(r["CPUPerc"], "40.00%");
        assert_eq!(r["MemUsage"], "1KiB / 4KiB");
        assert_eq!(r["MemPerc"], "25.00%");
        assert_eq!(r["PIDs"], "3");
        assert_eq!(r["Name"], "x");
    }

    #[test]
    fn ended_streams_show_dashes() {
        let last = json!({"ID": "abcdef012345", "Name": "x"});
        let r = invalid_row(Some(&last), "x");
        assert_eq!(r["Name"], "x");
        assert_eq!(r["ID"], "abcdef012345");
        assert_eq!(r["CPUPerc"], "--");
        assert_eq!(r["MemUsage"], "-- / --");
        assert_eq!(invalid_row(None, "y")["Name"], "--");
    }
}
