//! Push events: every ref update is recorded by the pre-receive hook (in the
//! transaction that accepts the push) and, once git is done, published on
//! the server's in-process bus for other features to subscribe to.

use serde::Serialize;
use tokio::sync::broadcast;
use utoipa::ToSchema;

/// One ref update of one push.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefUpdate {
    pub repo: String,
    /// The repository's version this push created.
    pub version: i64,
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// All zeros when the ref was created.
    pub old: String,
    /// All zeros when the ref was deleted.
    pub new: String,
    pub pusher: String,
    /// RFC 3339.
    pub time: String,
}

/// The in-process event bus.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<RefUpdate>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            sender: broadcast::channel(1024).0,
        }
    }
}

impl EventBus {
    pub fn subscribe(&self) -> broadcast::Receiver<RefUpdate> {
        self.sender.subscribe()
    }

    pub fn publish(&self, event: RefUpdate) {
        // No subscriber is not an error.
        let _ = self.sender.send(event);
    }
}
