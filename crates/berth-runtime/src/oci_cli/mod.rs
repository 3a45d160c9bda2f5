//! `berth runtime` / `berth-runc`: an OCI runtime with runc's command line, over the same
//! libcontainer path, executor and cgroup code the shim uses. Runs single-threaded (dispatched
//! before any tokio runtime). Errors go to `--log` (json or text, as runc's logrus) and stderr;
//! exit 0 ok, 1 error.

pub mod args;
mod bundle;
mod cgroup;
mod exec;
mod info;
mod lifecycle;
pub mod log;
pub mod resources;
pub mod signal;
pub mod state;

use std::path::{Path, PathBuf};

use clap::Parser;
use libcontainer::container::Container;

use args::{Cli, Cmd};

/// A command's failure: the one line runc would print.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

pub(crate) type R<T> = std::result::Result<T, CliError>;

pub(crate) fn fail<T>(msg: impl Into<String>) -> R<T> {
    Err(CliError(msg.into()))
}

impl From<String> for CliError {
    fn from(s: String) -> Self {
        CliError(s)
    }
}

/// libcontainer's error with its causes, on one line.
pub(crate) fn lc(what: &str, e: impl std::error::Error) -> CliError {
    let mut msg = format!("{what}: {e}");
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        src = s.source();
    }
    CliError(msg)
}

/// Entry point: `args[0]` is the program name. Returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind::*;
            let code = match e.kind() {
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 1,
            };
            let _ = e.print();
            return code;
        }
    };
    log::init(
        cli.log.as_deref(),
        cli.log_format == args::LogFormat::Json,
        cli.debug,
    );
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            log::line("error", &e.0);
            if cli.log.is_some() {
                eprintln!("{}", e.0);
            }
            1
        }
    }
}

fn run(cli: &Cli) -> R<i32> {
    if cli.systemd_cgroup {
        return fail(
            "--systemd-cgroup is not supported: berth's runtime manages cgroups through cgroupfs \
             only (set SystemdCgroup = false in containerd's runc options)",
        );
    }
    let root = &cli.root;
    match &cli.cmd {
        Cmd::Create(c) => lifecycle::create(root, &c.id, &c.opts, false).map(|_| 0),
        Cmd::Start(i) => lifecycle::start(root, &i.id).map(|_| 0),
        Cmd::Run(r) => lifecycle::run(root, r),
        Cmd::State(i) => lifecycle::state(root, &i.id).map(|_| 0),
        Cmd::Kill(k) => lifecycle::kill(root, k).map(|_| 0),
        Cmd::Delete(d) => lifecycle::delete(root, &d.id, d.force).map(|_| 0),
        Cmd::Pause(i) => lifecycle::pause(root, &i.id, true).map(|_| 0),
        Cmd::Resume(i) => lifecycle::pause(root, &i.id, false).map(|_| 0),
        Cmd::List(l) => lifecycle::list(root, l).map(|_| 0),
        Cmd::Exec(e) => exec::exec(root, e),
        Cmd::Ps(p) => cgroup::ps(root, p).map(|_| 0),
        Cmd::Update(u) => cgroup::update(root, u).map(|_| 0),
        Cmd::Events(e) => cgroup::events(root, e).map(|_| 0),
        Cmd::Features => info::features().map(|_| 0),
        Cmd::Spec(s) => info::spec(s).map(|_| 0),
        Cmd::Checkpoint(_) => fail(
            "checkpoint is not supported by berth's runtime (it has no CRIU support); \
             stop the container or use runc for checkpoint/restore",
        ),
        Cmd::Restore(_) => fail(
            "restore is not supported by berth's runtime (it has no CRIU support); \
             use runc for checkpoint/restore",
        ),
    }
}

/// The state directory of container `id`.
pub(crate) fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Load container `id` with its status refreshed, or runc's "does not exist".
pub(crate) fn load(root: &Path, id: &str) -> R<Container> {
    check_id(id)?;
    let d = dir(root, id);
    if !d.join("state.json").exists() {
        return fail(format!("container {id} does not exist"));
    }
    Container::load(d).map_err(|e| lc(&format!("load container {id}"), e))
}

/// Container ids as runc accepts them: letters, digits, `_ + - .`, not `.` or `..`.
pub(crate) fn check_id(id: &str) -> R<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        fail(format!(
            "invalid container id {id:?}: use letters, digits, _ + - ."
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(check_id("abc-1_2.x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "../x"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unsupported_things_fail_clearly() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_str().unwrap();
        let cli = Cli::try_parse_from(["berth-runc", "--root", root, "checkpoint", "c1"]).unwrap();
        let e = run(&cli).unwrap_err();
        assert!(e.0.contains("checkpoint is not supported"), "{e}");
        let cli = Cli::try_parse_from([
            "berth-runc",
            "--systemd-cgroup",
            "--root",
            root,
            "state",
            "x",
        ])
        .unwrap();
        assert!(run(&cli).unwrap_err().0.contains("cgroupfs only"));
        let cli = Cli::try_parse_from(["berth-runc", "--root", root, "state", "nope"]).unwrap();
        assert_eq!(run(&cli).unwrap_err().0, "container nope does not exist");
        assert_eq!(main(vec!["berth-runc".into(), "frobnicate".into()]), 1);
    }
}
