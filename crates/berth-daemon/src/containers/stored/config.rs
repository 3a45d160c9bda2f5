//! The stored `Config` of a container (what it runs, its env, labels, ports, health check).

use berth_api_types::models as api;

stored_struct! {
    /// The container's `Config` as created: the request merged with the image's config.
    pub struct ContainerConfig <=> api::ContainerConfig {
        "Hostname" hostname: String,
        "Domainname" domainname: String,
        "User" user: String,
        "AttachStdin" attach_stdin: bool,
        "AttachStdout" attach_stdout: bool,
        "AttachStderr" attach_stderr: bool,
        #[serde(with = "super::key_set")]
        "ExposedPorts" exposed_ports: Vec<String>,
        "Tty" tty: bool,
        "OpenStdin" open_stdin: bool,
        "StdinOnce" stdin_once: bool,
        "Env" env: Vec<String>,
        "Cmd" cmd: Vec<String>,
        "Healthcheck" healthcheck: HealthConfig,
        "ArgsEscaped" args_escaped: bool,
        "Image" image: String,
        #[serde(with = "super::key_set")]
        "Volumes" volumes: Vec<String>,
        "WorkingDir" working_dir: String,
        "Entrypoint" entrypoint: Vec<String>,
        "NetworkDisabled" network_disabled: bool,
        "OnBuild" on_build: Vec<String>,
        "Labels" labels: std::collections::HashMap<String, String>,
        "StopSignal" stop_signal: String,
        "StopTimeout" stop_timeout: i64,
        "Shell" shell: Vec<String>,
    }
}

stored_struct! {
    /// `Config.Healthcheck`: durations in nanoseconds, 0 inherits.
    pub struct HealthConfig <=> api::HealthConfig {
        "Test" test: Vec<String>,
        "Interval" interval: i64,
        "Timeout" timeout: i64,
        "Retries" retries: i64,
        "StartPeriod" start_period: i64,
        "StartInterval" start_interval: i64,
    }
}
