//! Exit statuses and docker-style error reporting for the binary.

use berth_client::Error as ApiError;

/// An error that carries the process exit status (docker: 125 engine/usage, else 1 or the
/// container's own code).
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub msg: Option<String>,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.msg {
            Some(m) => f.write_str(m),
            None => write!(f, "exit status {}", self.code),
        }
    }
}

impl std::error::Error for Exit {}

impl Exit {
    /// Exit quietly with `code`.
    pub fn code(code: i32) -> anyhow::Error {
        Exit { code, msg: None }.into()
    }
    /// Exit with a message and `code`.
    pub fn msg(code: i32, msg: impl Into<String>) -> anyhow::Error {
        Exit {
            code,
            msg: Some(msg.into()),
        }
        .into()
    }
}

/// Docker's wording for an API error.
pub fn describe(e: &anyhow::Error) -> String {
    if let Some(api) = e.downcast_ref::<ApiError>() {
        return match api {
            ApiError::Api { message, .. } => format!("Error response from daemon: {message}"),
            other => other.to_string(),
        };
    }
    format!("{e:#}")
}

/// Map an error to (message, exit code); `engine_code` is used for non-Exit errors
/// (125 for run/create/start, 1 for the rest like docker).
pub fn report(e: &anyhow::Error, engine_code: i32) -> (Option<String>, i32) {
    // A closed stdout (`berth export x | head`) ends quietly with SIGPIPE's status, like docker.
    let broken_pipe = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return (None, 141);
    }
    if let Some(x) = e.downcast_ref::<Exit>() {
        return (x.msg.clone(), x.code);
    }
    (Some(describe(e)), engine_code)
}

/// A `run` whose start failed, as the docker CLI reports it: 127 when the command was not
/// found, 126 when it could not be invoked, 125 for anything else the engine refused.
pub fn start_failure(e: anyhow::Error) -> anyhow::Error {
    let msg = describe(&e);
    let code = start_failure_code(&msg);
    Exit::msg(code, msg)
}

fn start_failure_code(msg: &str) -> i32 {
    if ["executable file not found", "no such file or directory"]
        .iter()
        .any(|s| msg.contains(s))
    {
        127
    } else if ["permission denied", "is a directory"]
        .iter()
        .any(|s| msg.contains(s))
    {
        126
    } else {
        125
    }
}

/// Turn a flag conversion error into docker's usage error with the help hint.
pub fn usage(cmd: &str, msg: impl std::fmt::Display) -> anyhow::Error {
    Exit::msg(125, format!("{msg}\nSee 'berth {cmd} --help'."))
}

#[cfg(test)]
mod start_failure_tests {
    use super::start_failure_code;

    #[test]
    fn start_failures_map_to_dockers_exit_codes() {
        let oci = |e: &str| {
            format!("Error response from daemon: failed to create task for container: OCI runtime create failed: {e}: unknown")
        };
        assert_eq!(
            start_failure_code(&oci("exec: \"nosuch\": executable file not found in $PATH")),
            127
        );
        assert_eq!(
            start_failure_code(&oci("exec /x: no such file or directory")),
            127
        );
        assert_eq!(
            start_failure_code(&oci("exec /etc: permission denied")),
            126
        );
        assert_eq!(start_failure_code(&oci("exec /etc: is a directory")), 126);
        assert_eq!(
            start_failure_code(
                "Error response from daemon: driver failed programming external connectivity"
            ),
            125
        );
    }
}
