//! `--ipc container:<x>`, `--pid container:<x>` and `--uts container:<x>` (Podman's; dockerd
//! knows only `host`): the donor's namespace file, resolved when the joiner starts (the donor
//! must be running then), with dockerd's refusals.

use std::path::PathBuf;

use berth_runtime::NsMode;

use super::status::Status;
use super::Record;
use crate::engine::Engine;
use crate::error::{DaemonError, ErrorKind, Result};

/// A donor lookup's failure, prefixed with what was being joined (moby's `errors.Wrap`).
fn donor_error(what: &str, e: DaemonError) -> DaemonError {
    let m = format!("{what}: {e}");
    match e.kind() {
        ErrorKind::NotFound => DaemonError::NotFound(m),
        _ => DaemonError::Conflict(m),
    }
}

/// The IPC modes moby accepts (`container:<x>` aside).
const IPC_MODES: &[&str] = &["", "private", "shareable", "none", "host"];

/// Refuse at create an IPC, PID or UTS mode dockerd (or, for `container:` UTS, Podman)
/// refuses (`invalid IPC mode: x`).
pub(crate) fn check_modes(
    ipc: Option<&str>,
    pid: Option<&str>,
    uts: Option<&str>,
) -> Result<(), String> {
    let ipc = ipc.unwrap_or("");
    let donor = |m: &str| m.strip_prefix("container:").map(|d| !d.is_empty());
    if !IPC_MODES.contains(&ipc) && donor(ipc) != Some(true) {
        return Err(format!("invalid IPC mode: {ipc}"));
    }
    let pid = pid.unwrap_or("");
    if !["", "host"].contains(&pid) && donor(pid) != Some(true) {
        return Err(format!("invalid PID mode: {pid}"));
    }
    let uts = uts.unwrap_or("");
    if !["", "host"].contains(&uts) && donor(uts) != Some(true) {
        return Err(format!("invalid UTS mode: {uts}"));
    }
    Ok(())
}

/// The namespace mode for `kind` (`ipc`, `pid`, `uts`) given the stored mode and, for
/// `container:<x>`, the donor's namespace file.
pub(crate) fn mode(stored: Option<&str>, joined: Option<&PathBuf>) -> NsMode {
    match (stored, joined) {
        (_, Some(p)) => NsMode::Path(p.clone()),
        (Some("host"), None) => NsMode::Host,
        _ => NsMode::Private,
    }
}

/// The donor a `container:<x>` mode names.
fn donor_of(mode: Option<&str>) -> Option<&str> {
    mode.and_then(|m| m.strip_prefix("container:"))
}

/// The namespace files a starting container joins (`container:<x>` modes).
#[derive(Debug, Default)]
pub(crate) struct Joined {
    pub ipc: Option<PathBuf>,
    pub pid: Option<PathBuf>,
    pub uts: Option<PathBuf>,
}

impl Engine {
    /// The donors' namespace files for a starting container.
    pub(crate) fn joined_namespaces(&self, r: &Record) -> Result<Joined> {
        let hc = &r.host_config;
        let ipc = donor_of(hc.ipc_mode.as_deref());
        let pid = donor_of(hc.pid_mode.as_deref());
        let uts = donor_of(hc.uts_mode.as_deref());
        Ok(Joined {
            ipc: ipc.map(|d| self.ipc_donor(d)).transpose()?,
            pid: pid.map(|d| self.pid_donor(d)).transpose()?,
            uts: uts.map(|d| self.uts_donor(d)).transpose()?,
        })
    }

    /// The hostname a `--uts container:<x>` joiner shows in /etc/hostname and inspect: its
    /// donor's (None for other modes, or when the donor is gone).
    pub(crate) fn uts_donor_hostname(&self, uts_mode: Option<&str>) -> Option<String> {
        let d = self.inner.containers.get(donor_of(uts_mode)?).ok()?;
        d.snapshot().config.hostname.clone()
    }

    /// The donor `name`, which must be running; `what` prefixes a lookup failure and, for IPC,
    /// a not-running one (moby wraps those; its PID join does not).
    fn running_donor(&self, name: &str, what: &str, wrap_state: bool) -> Result<Record> {
        let d = self
            .inner
            .containers
            .get(name)
            .map_err(|e| donor_error(what, e))?
            .snapshot();
        running(&d).map_err(|e| {
            DaemonError::Conflict(if wrap_state {
                format!("{what}: {e}")
            } else {
                e
            })
        })?;
        Ok(d)
    }

    fn ipc_donor(&self, donor: &str) -> Result<PathBuf> {
        let what = format!("can't join IPC of container {donor}");
        let d = self.running_donor(donor, &what, true)?;
        let mode = d.host_config.ipc_mode.as_deref().unwrap_or("");
        if !matches!(mode, "shareable" | "host") {
            return Err(DaemonError::Conflict(format!(
                "{what}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
            )));
        }
        Ok(PathBuf::from(format!("/proc/{}/ns/ipc", d.state.pid)))
    }

    /// The host directory to bind at /dev/shm (see `StartExtras::shm`).
    pub(crate) fn shared_shm(&self, r: &Record) -> Result<Option<PathBuf>> {
        if r.mount_specs.iter().any(|m| m.destination == "/dev/shm") {
            return Ok(None);
        }
        let mode = r.host_config.ipc_mode.as_deref().unwrap_or("");
        if mode == "shareable" {
            return Ok(Some(self.inner.containers.shm_dir(&r.id)));
        }
        let Some(donor) = mode.strip_prefix("container:") else {
            return Ok(None);
        };
        let d = self.inner.containers.get(donor)?.snapshot();
        Ok(match d.host_config.ipc_mode.as_deref() {
            Some("shareable") => Some(self.inner.containers.shm_dir(&d.id)),
            Some("host") => Some(PathBuf::from("/dev/shm")),
            _ => None,
        })
    }

    fn pid_donor(&self, donor: &str) -> Result<PathBuf> {
        let what = format!("cannot join PID of a non running container: {donor}");
        let d = self.running_donor(donor, &what, false)?;
        Ok(PathBuf::from(format!("/proc/{}/ns/pid", d.state.pid)))
    }

    fn uts_donor(&self, donor: &str) -> Result<PathBuf> {
        let what = format!("can't join UTS of container {donor}");
        let d = self.running_donor(donor, &what, true)?;
        Ok(PathBuf::from(format!("/proc/{}/ns/uts", d.state.pid)))
    }
}

/// moby's `containerIsRunning` and `containerIsNotRestarting`.
fn running(d: &Record) -> std::result::Result<(), String> {
    match d.state.status {
        Status::Restarting => Err(format!(
            "Container {} is restarting, wait until the container is running",
            d.id
        )),
        _ if d.running() && d.state.pid > 0 => Ok(()),
        _ => Err(format!("container {} is not running", d.id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_dockerd_refuses_are_refused() {
        assert!(check_modes(Some("shareable"), Some("host"), Some("host")).is_ok());
        assert!(check_modes(
            Some("container:db"),
            Some("container:db"),
            Some("container:db")
        )
        .is_ok());
        assert!(check_modes(None, None, None).is_ok());
        assert_eq!(
            check_modes(Some("bogus"), None, None).unwrap_err(),
            "invalid IPC mode: bogus"
        );
        assert_eq!(
            check_modes(Some("container:"), None, None).unwrap_err(),
            "invalid IPC mode: container:"
        );
        assert_eq!(
            check_modes(None, Some("private"), None).unwrap_err(),
            "invalid PID mode: private"
        );
        assert_eq!(
            check_modes(None, None, Some("private")).unwrap_err(),
            "invalid UTS mode: private"
        );
        assert_eq!(
            check_modes(None, None, Some("container:")).unwrap_err(),
            "invalid UTS mode: container:"
        );
    }

    #[test]
    fn a_donor_namespace_wins_over_the_stored_mode() {
        let p = PathBuf::from("/proc/7/ns/ipc");
        assert_eq!(mode(Some("container:x"), Some(&p)), NsMode::Path(p.clone()));
        assert_eq!(mode(Some("host"), None), NsMode::Host);
        assert_eq!(mode(Some("shareable"), None), NsMode::Private);
        assert_eq!(mode(None, None), NsMode::Private);
    }
}
