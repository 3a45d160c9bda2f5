//! The engine's event bus: a bounded backlog (for `docker events --since`) plus a broadcast
//! channel for live subscribers, handed out together so no event is lost or doubled.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use berth_api_types::models::{
    EventActor, EventMessage, EventMessageScopeEnum, EventMessageTypeEnum,
};
use berth_api_types::EventStream;
use futures::StreamExt;
use tokio::sync::broadcast;

/// How many past events `--since` can reach.
const BACKLOG: usize = 1024;

/// Publishes engine events.
pub struct EventBus {
    backlog: Mutex<VecDeque<EventMessage>>,
    tx: broadcast::Sender<EventMessage>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

impl EventBus {
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(BACKLOG);
        EventBus {
            backlog: Mutex::new(VecDeque::with_capacity(BACKLOG)),
            tx,
        }
    }

    /// Emit an event of `typ` (e.g. image `tag`) about `id` with `attributes`.
    pub fn emit(
        &self,
        typ: EventMessageTypeEnum,
        action: &str,
        id: &str,
        attributes: HashMap<String, String>,
    ) {
        let now = chrono::Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        let ev = EventMessage {
            typ: Some(typ),
            action: Some(action.to_string()),
            actor: Some(EventActor {
                id: Some(id.to_string()),
                attributes: Some(attributes),
            }),
            scope: Some(EventMessageScopeEnum::LOCAL),
            time: Some(nanos / 1_000_000_000),
            time_nano: Some(nanos),
        };
        tracing::debug!(action, id, "event");
        let mut b = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() == BACKLOG {
            b.pop_front();
        }
        b.push_back(ev.clone());
        // Sent under the backlog lock so subscribe() sees each event exactly once.
        let _ = self.tx.send(ev);
    }

    /// An image event with Docker's `name` attribute plus the image's labels.
    pub fn image(&self, action: &str, id: &str, name: &str, labels: &HashMap<String, String>) {
        let mut attrs = labels.clone();
        attrs.insert("name".into(), name.to_string());
        self.emit(EventMessageTypeEnum::IMAGE, action, id, attrs);
    }

    /// The backlog and a live stream continuing right after it.
    pub fn subscribe(&self) -> (Vec<EventMessage>, EventStream) {
        let b = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        let past = b.iter().cloned().collect();
        drop(b);
        let live = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => return Some((ev, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "event subscriber lagged");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        (past, live.boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn backlog_then_live_without_gaps() {
        let bus = EventBus::new();
        bus.image("tag", "sha256:a", "busybox:latest", &HashMap::new());
        let (past, mut live) = bus.subscribe();
        bus.image("untag", "sha256:a", "sha256:a", &HashMap::new());
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].action.as_deref(), Some("tag"));
        let next = live.next().await.unwrap();
        assert_eq!(next.action.as_deref(), Some("untag"));
        assert_eq!(next.typ, Some(EventMessageTypeEnum::IMAGE));
    }
}
