//! A container's lifecycle status (Docker's `State.Status`), one enum instead of strings.

use serde::{Deserialize, Serialize};

/// Docker's seven container states. Serialised lowercase, as Docker writes them and as
/// `config.v2.json` has always stored them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    /// Docker's word for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// The status Docker's word names (moby's `IsValidStateString`), if any.
    pub fn from_docker(word: &str) -> Option<Status> {
        [
            Status::Created,
            Status::Running,
            Status::Paused,
            Status::Restarting,
            Status::Removing,
            Status::Exited,
            Status::Dead,
        ]
        .into_iter()
        .find(|s| s.as_str() == word)
    }

    /// A process exists for the container (Docker's `State.Running`: running, paused or
    /// restarting).
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Status;

    /// The on-disk record format must not change: each status is stored as Docker's word.
    #[test]
    fn stored_as_dockers_words() {
        for (s, w) in [
            (Status::Created, "created"),
            (Status::Running, "running"),
            (Status::Paused, "paused"),
            (Status::Restarting, "restarting"),
            (Status::Removing, "removing"),
            (Status::Exited, "exited"),
            (Status::Dead, "dead"),
        ] {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{w}\""));
            assert_eq!(
                serde_json::from_str::<Status>(&format!("\"{w}\"")).unwrap(),
                s
            );
            assert_eq!(s.as_str(), w);
        }
        assert!(serde_json::from_str::<Status>("\"Running\"").is_err());
    }
}
