//! The rootless daemon's user-mode network stack: slirp4netns attached to the daemon's network
//! namespace (a `tap0` with 10.0.2.100, default route and DNS through slirp), started by the
//! host-side parent ([`Slirp`], a [`Beside`]), and its API socket, through which published ports
//! are forwarded from the host straight to container addresses in the namespace
//! ([`add_hostfwd`], [`remove_hostfwd`]; the namespace answers ARP for them on tap0).

use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::spawn::Beside;
use crate::RootlessError;

/// The TUN device slirp4netns opens inside the namespace.
const TUN: &str = "/dev/net/tun";

/// The API socket's name in the daemon's exec root.
pub const API_SOCKET: &str = "slirp4netns.sock";

/// slirp4netns's DNS forwarder (its default network 10.0.2.0/24): how the daemon's namespace,
/// which `--disable-host-loopback` keeps from the host's 127.0.0.0/8, reaches the host's
/// loopback resolvers (systemd-resolved's 127.0.0.53).
pub const DNS: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 2, 3));

/// slirp4netns for the daemon's network namespace; `stop` ends it.
pub struct Slirp {
    api: PathBuf,
    child: Option<Child>,
    /// Closing it tells slirp4netns to exit (its `--exit-fd`), also when we die.
    exit: Option<OwnedFd>,
}

impl Slirp {
    /// slirp4netns on PATH, its API socket in `exec_root`; None (and a warning line) when it is
    /// not installed: containers then have no outbound network and nothing can be published.
    pub fn find(exec_root: &Path) -> Option<Slirp> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let found = std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/bin")])
            .any(|d| d.join("slirp4netns").is_file());
        if !found {
            eprintln!(
                "berth: warning: slirp4netns not found: rootless containers get no outbound \
                 network and -p cannot publish ports; install it (apt-get install slirp4netns)"
            );
            return None;
        }
        // Distributions' udev makes it 0666; a host without udev leaves the kernel's 0600.
        let tun = nix::unistd::access(
            TUN,
            nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
        );
        if let Err(e) = tun {
            eprintln!(
                "berth: warning: {TUN} is not usable by you ({e}): rootless containers get no \
                 outbound network and -p cannot publish ports; as root: chmod 0666 {TUN} \
                 (what udev sets on most distributions)"
            );
            return None;
        }
        Some(Slirp {
            api: exec_root.join(API_SOCKET),
            child: None,
            exit: None,
        })
    }
}

/// slirp4netns's arguments for namespace-holder `pid` (pure).
pub fn args(pid: u32, api: &Path, exit_fd: i32, ready_fd: i32) -> Vec<String> {
    vec![
        "--configure".into(),
        "--mtu=65520".into(),
        // Containers must not reach services the host keeps on its loopback.
        "--disable-host-loopback".into(),
        "--enable-sandbox".into(),
        "--enable-seccomp".into(),
        format!("--api-socket={}", api.display()),
        format!("--exit-fd={exit_fd}"),
        format!("--ready-fd={ready_fd}"),
        pid.to_string(),
        "tap0".into(),
    ]
}

const EXIT_FD: i32 = 3;
const READY_FD: i32 = 4;

impl Beside for Slirp {
    fn start(&mut self, pid: u32) -> Result<(), RootlessError> {
        let io = |what: &str, e: std::io::Error| RootlessError::io(what.to_string(), e);
        if let Some(dir) = self.api.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io(&format!("create {}", dir.display()), e))?;
        }
        let _ = std::fs::remove_file(&self.api);
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| io("create a pipe for slirp4netns", e.into()))
        };
        let (exit_r, exit_w) = pipe()?;
        let (ready_r, ready_w) = pipe()?;
        let (er, rw) = (exit_r.as_raw_fd(), ready_w.as_raw_fd());
        let mut cmd = Command::new("slirp4netns");
        cmd.args(args(pid, &self.api, EXIT_FD, READY_FD))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // SAFETY: place_fd only makes async-signal-safe calls; the targets are the fds named in
        // the arguments.
        unsafe {
            cmd.pre_exec(move || {
                for (from, to) in [(er, EXIT_FD), (rw, READY_FD)] {
                    place_fd(from, to)?;
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| io("start slirp4netns", e))?;
        drop((exit_r, ready_w));
        self.child = Some(child);
        self.exit = Some(exit_w);
        // It writes "1" once tap0 is configured; EOF means it gave up.
        let mut ready = std::fs::File::from(ready_r);
        let mut b = [0u8; 1];
        match ready.read(&mut b) {
            Ok(1) => Ok(()),
            _ => Err(RootlessError::Map {
                what: "slirp4netns (the rootless network)".into(),
                detail: "exited before the network was configured; run `slirp4netns --help` \
                         to check it works"
                    .into(),
            }),
        }
    }

    fn stop(&mut self) {
        self.exit = None;
        if let Some(mut c) = self.child.take() {
            for _ in 0..50 {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_file(&self.api);
    }
}

/// The `add_hostfwd` request: `proto host_ip:host_port` on the host to `guest:guest_port`.
pub fn add_request(
    proto: &str,
    host_ip: IpAddr,
    host_port: u16,
    guest: IpAddr,
    guest_port: u16,
) -> Value {
    json!({"execute": "add_hostfwd", "arguments": {
        "proto": proto,
        "host_addr": host_ip.to_string(),
        "host_port": host_port,
        "guest_addr": guest.to_string(),
        "guest_port": guest_port,
    }})
}

/// A reply's `return` value, or its error's description.
pub fn reply(text: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(text).map_err(|e| {
        format!(
            "slirp4netns answered {:?}: {e}",
            String::from_utf8_lossy(text)
        )
    })?;
    if let Some(e) = v.get("error") {
        return Err(e["desc"].as_str().unwrap_or("unknown error").to_string());
    }
    Ok(v.get("return").cloned().unwrap_or(Value::Null))
}

fn call(api: &Path, req: &Value) -> Result<Value, String> {
    let mut s = UnixStream::connect(api)
        .map_err(|e| format!("cannot reach slirp4netns at {}: {e}", api.display()))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    s.write_all(req.to_string().as_bytes())
        .and_then(|()| s.shutdown(std::net::Shutdown::Write))
        .map_err(|e| format!("slirp4netns at {}: {e}", api.display()))?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .map_err(|e| format!("slirp4netns at {}: {e}", api.display()))?;
    reply(&out)
}

/// Forward a host port into the namespace; returns slirp4netns's id for [`remove_hostfwd`].
pub fn add_hostfwd(
    api: &Path,
    proto: &str,
    host_ip: IpAddr,
    host_port: u16,
    guest: IpAddr,
    guest_port: u16,
) -> Result<u64, String> {
    let r = call(
        api,
        &add_request(proto, host_ip, host_port, guest, guest_port),
    )?;
    r["id"]
        .as_u64()
        .ok_or_else(|| format!("slirp4netns answered no forward id: {r}"))
}

/// Stop forwarding `id`.
pub fn remove_hostfwd(api: &Path, id: u64) -> Result<(), String> {
    call(
        api,
        &json!({"execute": "remove_hostfwd", "arguments": {"id": id}}),
    )
    .map(|_| ())
}

/// Put fd `from` at `to` for the program about to be exec'd (async-signal-safe): dup2, or,
/// when it is there already (the pipe got fd 3 itself), clear its close-on-exec flag, which
/// dup2 onto itself leaves set. Without that slirp4netns lost its exit fd and outlived a
/// supervisor that was killed.
fn place_fd(from: i32, to: i32) -> std::io::Result<()> {
    // SAFETY: fcntl and dup2 on plain fd numbers; no memory is involved.
    let r = unsafe {
        if from == to {
            libc::fcntl(to, libc::F_SETFD, 0)
        } else {
            libc::dup2(from, to)
        }
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_end_already_at_its_number_stays_open_across_exec() {
        use std::os::fd::AsRawFd;
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let cloexec = |fd: i32| {
            // SAFETY: F_GETFD on an fd this test owns.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            flags & libc::FD_CLOEXEC != 0
        };
        assert!(cloexec(r.as_raw_fd()));
        // Onto itself: the flag is cleared (dup2 would leave it).
        place_fd(r.as_raw_fd(), r.as_raw_fd()).unwrap();
        assert!(!cloexec(r.as_raw_fd()));
        // Onto another number: a copy without the flag.
        let spare = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap().0;
        place_fd(w.as_raw_fd(), spare.as_raw_fd()).unwrap();
        assert!(!cloexec(spare.as_raw_fd()));
        assert!(place_fd(-1, 1000).is_err());
    }

    #[test]
    fn requests_and_replies() {
        let r = add_request(
            "tcp",
            "127.0.0.1".parse().unwrap(),
            8080,
            "172.30.0.2".parse().unwrap(),
            80,
        );
        let want = json!({"execute": "add_hostfwd", "arguments": {"proto": "tcp",
            "host_addr": "127.0.0.1", "host_port": 8080, "guest_addr": "172.30.0.2",
            "guest_port": 80}});
        assert_eq!(r, want);
        assert_eq!(reply(br#"{"return": {"id": 3}}"#).unwrap()["id"], 3);
        assert_eq!(
            reply(br#"{"error": {"desc": "bad request: add_hostfwd: slirp_add_hostfwd failed"}}"#)
                .unwrap_err(),
            "bad request: add_hostfwd: slirp_add_hostfwd failed"
        );
        assert!(reply(b"garbage").unwrap_err().contains("garbage"));
    }

    #[test]
    fn arguments_name_the_fds_and_the_namespace_holder() {
        let a = args(42, Path::new("/run/user/1/berth/slirp4netns.sock"), 3, 4);
        assert!(a.contains(&"--disable-host-loopback".to_string()));
        assert!(a.contains(&"--exit-fd=3".to_string()) && a.contains(&"--ready-fd=4".to_string()));
        assert_eq!(a[a.len() - 2..], ["42".to_string(), "tap0".to_string()]);
    }
}
