//! Container health checks (Docker's HEALTHCHECK): the pure probe plan and state transitions,
//! and the per-start task that runs the probe through the shim's exec and records `State.Health`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stored::HealthConfig;
use berth_runtime::{ExecConfig, Shim};
use serde_json::{json, Value};

use super::{lock, now_rfc3339, Ctr};
use crate::engine::Engine;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
/// Probe interval during the start period while still `starting` (moby's default).
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
/// The smallest non-zero duration a health config may ask for (as dockerd validates).
const MIN_DURATION_NS: i64 = 1_000_000;
/// Docker keeps the last five probe results.
const MAX_LOG: usize = 5;
/// Probe output kept per result.
const MAX_OUTPUT: usize = 4096;

/// A health check resolved from the container config: what to run and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Probe {
    pub args: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: i64,
    pub start_period: Duration,
    /// Interval between probes in the start period while the status is `starting`.
    pub start_interval: Duration,
}

impl Probe {
    /// How long to wait before the next probe, `since_start` after the container started:
    /// during the start period a still-starting container is probed every `start_interval`
    /// (API 1.44's StartInterval), otherwise every `interval`, as moby's monitor does.
    pub fn next_delay(&self, since_start: Duration, status: Status) -> Duration {
        if since_start < self.start_period && status == Status::Starting {
            self.start_interval
        } else {
            self.interval
        }
    }
}

/// Dockerd's checks of a health config at create: durations are 0 or at least 1ms, retries
/// not negative. Returns the message to report as an invalid request.
pub(crate) fn validate(h: &HealthConfig) -> Result<(), String> {
    for (name, v) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        let v = v.unwrap_or(0);
        if v != 0 && v < MIN_DURATION_NS {
            return Err(format!("{name} in Healthcheck cannot be less than 1ms"));
        }
    }
    if h.retries.unwrap_or(0) < 0 {
        return Err("Retries in Healthcheck cannot be negative".into());
    }
    Ok(())
}

/// Health status as Docker spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Starting,
    Healthy,
    Unhealthy,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Healthy => "healthy",
            Status::Unhealthy => "unhealthy",
        }
    }
}

/// In-memory health of one container between probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Health {
    pub status: Status,
    pub failing_streak: i64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            status: Status::Starting,
            failing_streak: 0,
        }
    }
}

fn dur(ns: Option<i64>, default: Duration) -> Duration {
    match ns {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

/// The probe to run, or None when there is no check (absent, empty, `["NONE"]`).
pub(crate) fn probe_of(h: Option<&HealthConfig>) -> Option<Probe> {
    let h = h?;
    let test = h.test.as_ref()?;
    let args = match test.first().map(String::as_str)? {
        "CMD" => test[1..].to_vec(),
        "CMD-SHELL" => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
        _ => return None,
    };
    if args.is_empty() || args.iter().all(|a| a.is_empty()) {
        return None;
    }
    Some(Probe {
        args,
        interval: dur(h.interval, DEFAULT_INTERVAL),
        timeout: dur(h.timeout, DEFAULT_TIMEOUT),
        retries: match h.retries {
            Some(r) if r > 0 => r,
            _ => DEFAULT_RETRIES,
        },
        start_period: dur(h.start_period, Duration::ZERO),
        start_interval: dur(h.start_interval, DEFAULT_START_INTERVAL),
    })
}

/// The health after one probe result (`exit_code` None = timed out or could not run).
/// Success always makes it healthy; failures in the start period do not count.
pub(crate) fn apply_result(
    health: Health,
    exit_code: Option<i64>,
    in_start_period: bool,
    retries: i64,
) -> Health {
    if exit_code == Some(0) {
        return Health {
            status: Status::Healthy,
            failing_streak: 0,
        };
    }
    if in_start_period {
        return health;
    }
    let failing_streak = health.failing_streak + 1;
    let status = if failing_streak >= retries.max(1) {
        Status::Unhealthy
    } else {
        health.status
    };
    Health {
        status,
        failing_streak,
    }
}

/// `State.Health` as Docker renders it, appending `entry` and keeping the last five.
pub(crate) fn render(h: Health, prev: Option<&Value>, entry: Option<Value>) -> Value {
    let mut log: Vec<Value> = prev
        .and_then(|p| p.get("Log"))
        .and_then(|l| l.as_array())
        .cloned()
        .unwrap_or_default();
    if let Some(e) = entry {
        log.push(e);
    }
    let skip = log.len().saturating_sub(MAX_LOG);
    let log: Vec<Value> = log.into_iter().skip(skip).collect();
    json!({ "Status": h.status.as_str(), "FailingStreak": h.failing_streak, "Log": log })
}

/// A managed recreate (`update`) keeps the health history: the probes of the process before
/// (`prev`) go ahead of those of the new one already in `now`, the newest `MAX_LOG` kept.
pub(crate) fn carry_log(prev: Option<&Value>, now: &mut Value) {
    let old = prev
        .and_then(|p| p.get("Log"))
        .and_then(|l| l.as_array())
        .cloned()
        .unwrap_or_default();
    let Some(cur) = now.get_mut("Log").and_then(|l| l.as_array_mut()) else {
        return;
    };
    let mut log = old;
    log.append(cur);
    let skip = log.len().saturating_sub(MAX_LOG);
    *cur = log.into_iter().skip(skip).collect();
}

/// Probe output: stdout then stderr, cut to 4096 bytes.
pub(crate) fn output_of(out: &[u8], err: &[u8]) -> String {
    let mut b = out.to_vec();
    b.extend_from_slice(err);
    b.truncate(MAX_OUTPUT);
    String::from_utf8_lossy(&b).into_owned()
}

impl Engine {
    /// Start the health task for a container that just started (no-op without a check).
    /// It ends by itself when the container exits or is removed.
    pub(crate) fn spawn_health(&self, ctr: Arc<Ctr>) {
        let rec = ctr.snapshot();
        let Some(probe) = probe_of(rec.config.healthcheck.as_ref()) else {
            return;
        };
        let mut life = ctr.life.subscribe();
        let exits = life.borrow().exits;
        lock(&ctr.rec).health = Some(render(Health::default(), None, None));
        self.inner.containers.save(&ctr);
        let eng = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut health = Health::default();
            loop {
                let delay = probe.next_delay(started.elapsed(), health.status);
                let stopped = tokio::select! {
                    _ = tokio::time::sleep(delay) => false,
                    r = life.changed() => r.is_err(),
                };
                let gone = stopped || {
                    let l = *life.borrow();
                    l.exits != exits || l.removed
                };
                if gone || lock(&ctr.rec).state.status != super::Status::Running {
                    if gone {
                        return;
                    }
                    continue;
                }
                let in_start = started.elapsed() < probe.start_period;
                let (entry, code) = eng.run_probe(&ctr, &probe).await;
                let l = *life.borrow();
                if l.exits != exits || l.removed {
                    return;
                }
                let before = health.status;
                health = apply_result(health, code, in_start, probe.retries);
                let rec = {
                    let mut g = lock(&ctr.rec);
                    g.health = Some(render(health, g.health.as_ref(), Some(entry)));
                    g.clone()
                };
                eng.inner.containers.save(&ctr);
                if before != health.status {
                    let action = format!("health_status: {}", health.status.as_str());
                    eng.ctr_event(&action, &rec, HashMap::new());
                }
            }
        });
    }

    /// Run the probe once: its log entry and exit code (None when it could not run or timed out).
    async fn run_probe(&self, ctr: &Ctr, probe: &Probe) -> (Value, Option<i64>) {
        let start = now_rfc3339();
        let cfg = ExecConfig {
            args: probe.args.clone(),
            env: vec![],
            cwd: String::new(),
            user: None,
            tty: false,
            stdin: false,
            privileged: false,
        };
        let shim = Shim::new(self.inner.containers.ctr_dir(&ctr.id()));
        let run = async {
            let (_pid, ss) = shim.exec(&cfg).await.map_err(|e| e.to_string())?;
            ss.collect().await.map_err(|e| e.to_string())
        };
        let (code, output) = match tokio::time::timeout(probe.timeout, run).await {
            Ok(Ok((out, err, code))) => (code.map(i64::from), output_of(&out, &err)),
            Ok(Err(e)) => (None, format!("health check could not run: {e}")),
            Err(_) => (
                None,
                format!(
                    "Health check exceeded timeout ({})",
                    berth_oci::go_duration(probe.timeout)
                ),
            ),
        };
        let entry = json!({
            "Start": start,
            "End": now_rfc3339(),
            "ExitCode": code.unwrap_or(-1),
            "Output": output,
        });
        (entry, code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recreate_carries_the_log() {
        let prev = json!({"Status": "healthy", "Log": [1, 2, 3, 4]});
        let mut now = render(Health::default(), None, Some(json!(5)));
        carry_log(Some(&prev), &mut now);
        assert_eq!(now["Log"], json!([1, 2, 3, 4, 5]));
        let mut now = render(Health::default(), Some(&json!({"Log": [5, 6]})), None);
        carry_log(Some(&prev), &mut now);
        assert_eq!(now["Log"], json!([2, 3, 4, 5, 6]));
        assert_eq!(now["Status"], "starting");
        carry_log(None, &mut now);
        assert_eq!(now["Log"], json!([2, 3, 4, 5, 6]));
    }

    fn hc(test: &[&str]) -> HealthConfig {
        HealthConfig {
            test: Some(test.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn probe_forms_and_defaults() {
        let p = probe_of(Some(&hc(&["CMD", "true", "x"]))).unwrap();
        assert_eq!(p.args, ["true", "x"]);
        assert_eq!(p.interval, Duration::from_secs(30));
        assert_eq!(p.timeout, Duration::from_secs(30));
        assert_eq!(p.retries, 3);
        assert_eq!(p.start_period, Duration::ZERO);
        let p = probe_of(Some(&hc(&["CMD-SHELL", "exit 1"]))).unwrap();
        assert_eq!(p.args, ["/bin/sh", "-c", "exit 1"]);
        assert_eq!(probe_of(Some(&hc(&["NONE"]))), None);
        assert_eq!(probe_of(Some(&hc(&[]))), None);
        assert_eq!(probe_of(None), None);
        let mut h = hc(&["CMD", "true"]);
        h.interval = Some(1_000_000_000);
        h.retries = Some(1);
        h.start_period = Some(5_000_000_000);
        let p = probe_of(Some(&h)).unwrap();
        assert_eq!(p.interval, Duration::from_secs(1));
        assert_eq!(p.retries, 1);
        assert_eq!(p.start_period, Duration::from_secs(5));
        assert_eq!(p.start_interval, Duration::from_secs(5));
    }

    #[test]
    fn start_interval_applies_only_while_starting_in_the_start_period() {
        let mut h = hc(&["CMD", "true"]);
        h.interval = Some(3_600_000_000_000);
        h.start_period = Some(60_000_000_000);
        h.start_interval = Some(100_000_000);
        let p = probe_of(Some(&h)).unwrap();
        let fast = Duration::from_millis(100);
        let slow = Duration::from_secs(3600);
        assert_eq!(p.next_delay(Duration::ZERO, Status::Starting), fast);
        assert_eq!(
            p.next_delay(Duration::from_secs(59), Status::Starting),
            fast
        );
        assert_eq!(
            p.next_delay(Duration::from_secs(60), Status::Starting),
            slow
        );
        assert_eq!(p.next_delay(Duration::ZERO, Status::Healthy), slow);
        // No start period: the start interval never applies.
        h.start_period = None;
        let p = probe_of(Some(&h)).unwrap();
        assert_eq!(p.next_delay(Duration::ZERO, Status::Starting), slow);
    }

    #[test]
    fn durations_validated_like_dockerd() {
        let mut h = hc(&["CMD", "true"]);
        assert!(validate(&h).is_ok());
        h.start_interval = Some(999_999);
        assert_eq!(
            validate(&h).unwrap_err(),
            "StartInterval in Healthcheck cannot be less than 1ms"
        );
        h.start_interval = Some(1_000_000);
        h.retries = Some(-1);
        assert!(validate(&h).unwrap_err().contains("Retries"));
    }

    #[test]
    fn transitions() {
        let s = Health::default();
        let ok = apply_result(s, Some(0), false, 3);
        assert_eq!(ok.status, Status::Healthy);
        assert_eq!(ok.failing_streak, 0);
        // Failures in the start period do not count.
        assert_eq!(apply_result(s, Some(1), true, 1), s);
        // Success in the start period still counts.
        assert_eq!(apply_result(s, Some(0), true, 3).status, Status::Healthy);
        let f1 = apply_result(ok, Some(1), false, 2);
        assert_eq!((f1.status, f1.failing_streak), (Status::Healthy, 1));
        let f2 = apply_result(f1, None, false, 2);
        assert_eq!((f2.status, f2.failing_streak), (Status::Unhealthy, 2));
        assert_eq!(apply_result(f2, Some(0), false, 2), ok);
        let once = apply_result(s, Some(1), false, 1);
        assert_eq!(once.status, Status::Unhealthy);
    }

    #[test]
    fn log_keeps_last_five_and_truncates() {
        let mut v = render(Health::default(), None, None);
        for i in 0..7 {
            v = render(Health::default(), Some(&v), Some(json!({ "ExitCode": i })));
        }
        let log = v["Log"].as_array().unwrap();
        assert_eq!(log.len(), 5);
        assert_eq!(log[0]["ExitCode"], 2);
        assert_eq!(v["Status"], "starting");
        assert_eq!(output_of(&[b'a'; 5000], b"e").len(), 4096);
        assert_eq!(output_of(b"o", b"e"), "oe");
    }
}
