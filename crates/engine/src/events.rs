//! The engine's event bus: every lifecycle change of a container or image is published here.
//! `/events` streams it, and waiters (`wait`, `stop`) follow exits and removals through it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

/// One event, in the engine's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `container` or `image`.
    pub kind: &'static str,
    /// `create`, `start`, `die`, `destroy`, `kill`, `stop`, `pause`, `unpause`, `rename`,
    /// `tag`, `untag`, `delete`, `load`, `import`, ...
    pub action: String,
    /// Container id or image id.
    pub id: String,
    /// `name`, `image`, `exitCode`, `signal`, labels.
    pub attributes: BTreeMap<String, String>,
    /// Exit code carried by `die` and `destroy` (for `wait`).
    pub exit_code: Option<i32>,
    pub time: DateTime<Utc>,
}

impl Event {
    /// Docker's JSON event message.
    pub fn to_json(&self) -> serde_json::Value {
        let nanos = self.time.timestamp_nanos_opt().unwrap_or_default();
        let mut v = serde_json::json!({
            "Type": self.kind,
            "Action": self.action,
            "Actor": {"ID": self.id, "Attributes": self.attributes},
            "scope": "local",
            "time": self.time.timestamp(),
            "timeNano": nanos,
        });
        if self.kind == "container" {
            v["status"] = self.action.clone().into();
            v["id"] = self.id.clone().into();
            if let Some(img) = self.attributes.get("image") {
                v["from"] = img.clone().into();
            }
        }
        v
    }
}

/// Publisher side of the bus; cheap to clone.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self { tx }
    }
}

impl Events {
    /// Publishes an event (nobody listening is fine).
    pub fn publish(&self, event: Event) {
        tracing::debug!(kind = event.kind, action = %event.action, id = %event.id, "event");
        let _ = self.tx.send(Arc::new(event));
    }

    /// A new subscription; sees events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Number of `/events` listeners and waiters.
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_see_published_events() {
        let bus = Events::default();
        let mut rx = bus.subscribe();
        bus.publish(Event {
            kind: "container",
            action: "die".into(),
            id: "abc".into(),
            attributes: BTreeMap::from([("exitCode".into(), "3".into())]),
            exit_code: Some(3),
            time: Utc::now(),
        });
        let e = rx.recv().await.expect("event");
        assert_eq!(e.exit_code, Some(3));
        let j = e.to_json();
        assert_eq!(j["status"], "die");
        assert_eq!(j["Actor"]["Attributes"]["exitCode"], "3");
    }
}
