//! runc's `--log`/`--log-format`: logrus-style lines (`{"level","msg","time"}` in json, or
//! `time=… level=… msg=…`), for libcontainer's tracing events and the final error — containerd's
//! shim reads the last `error` line's `msg` as the reason a command failed.

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

struct Logger {
    out: Mutex<Box<dyn Write + Send>>,
    json: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// One line in logrus's format.
pub fn format_line(json: bool, level: &str, msg: &str, time: &str) -> String {
    if json {
        serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
    } else {
        format!(
            "time={:?} level={level} msg={:?}",
            time,
            msg.replace('\n', " ")
        )
    }
}

/// Log to `path` (appending) or stderr; `debug` lowers the threshold from error to debug
/// (libcgroups warns about every v1 controller this host lacks, on every command).
pub fn init(path: Option<&Path>, json: bool, debug: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let out: Box<dyn Write + Send> = match path.and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    }) {
        Some(f) => Box::new(f),
        None => Box::new(std::io::stderr()),
    };
    let _ = LOGGER.set(Logger {
        out: Mutex::new(out),
        json,
    });
    let max = if debug { Level::DEBUG } else { Level::ERROR };
    let _ = tracing_subscriber::registry()
        .with(RuncLayer.with_filter(tracing_subscriber::filter::LevelFilter::from_level(max)))
        .try_init();
}

/// Write one line at `level` (as logrus names it: error, warning, info, debug).
pub fn line(level: &str, msg: &str) {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    match LOGGER.get() {
        Some(l) => {
            let mut text = format_line(l.json, level, msg, &time);
            text.push('\n');
            if let Ok(mut o) = l.out.lock() {
                let _ = o.write_all(text.as_bytes());
                let _ = o.flush();
            }
        }
        None => eprintln!("{}", format_line(false, level, msg, &time)),
    }
}

struct RuncLayer;

#[derive(Default)]
struct Msg(String);

impl Visit for Msg {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let v = format!("{value:?}");
            self.0 = if self.0.is_empty() {
                v
            } else {
                format!("{v} {}", self.0)
            };
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(&format!("{}={value:?}", field.name()));
        }
    }
}

impl<S: Subscriber> Layer<S> for RuncLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut m = Msg::default();
        event.record(&mut m);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            _ => "debug",
        };
        line(level, &m.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logrus_shapes() {
        let j = format_line(true, "error", "boom \"x\"", "2026-12-07T18:00:00Z");
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert_eq!(v["time"], "2026-12-07T18:00:00Z");
        let t = format_line(false, "warning", "a\nb", "T");
        assert_eq!(t, "time=\"T\" level=warning msg=\"a b\"");
    }
}
