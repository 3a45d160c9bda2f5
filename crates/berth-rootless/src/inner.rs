//! The namespace side of rootless mode, run by the re-executed daemon (root of its user
//! namespace) before anything else: die with the host-side parent, drop the user's
//! supplementary groups, keep its mounts to itself, bring up loopback (and proxy ARP on
//! slirp4netns's tap0) in its network namespace,
//! and on a cgroup v1 host give the runtime a private cgroup tree ([`crate::cgroup`]).

use nix::mount::{mount, MsFlags};

use crate::spawn::parent_pid;
use crate::RootlessError;

/// Prepare the namespaces for the daemon; `single` when only root is mapped (then `setgroups`
/// is denied and the groups stay as they are).
pub fn enter(single: bool) -> Result<(), RootlessError> {
    // The death signal set before the first exec was cleared when this exec raised our
    // capabilities: set it again, then make sure the parent did not die in between.
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) } < 0 {
        return Err(RootlessError::io(
            "set the parent-death signal",
            std::io::Error::last_os_error(),
        ));
    }
    if parent_pid().is_some_and(|p| nix::unistd::getppid().as_raw() != p) {
        std::process::exit(1);
    }
    // Root's tools (nft, ip) live in sbin, which an ordinary user's PATH often lacks.
    let path = std::env::var("PATH").unwrap_or_default();
    if !path.split(':').any(|d| d == "/usr/sbin") {
        std::env::set_var("PATH", format!("{path}:/usr/sbin:/sbin"));
    }
    if !single {
        nix::unistd::setgroups(&[])
            .map_err(|e| RootlessError::io("drop supplementary groups", e.into()))?;
    }
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| RootlessError::io("make / private in the daemon's mount namespace", e.into()))?;
    if !crate::cgroup::cgroup2_root() {
        crate::cgroup::private_tree()?;
    }
    loopback_up()
        .map_err(|e| RootlessError::io("bring up lo in the daemon's network namespace", e))?;
    // slirp4netns delivers published ports to container addresses through tap0, asking for
    // their link address there: the namespace answers for what it routes (bridges behind it).
    let proxy_arp = std::path::Path::new("/proc/sys/net/ipv4/conf/tap0/proxy_arp");
    if proxy_arp.exists() {
        std::fs::write(proxy_arp, b"1")
            .map_err(|e| RootlessError::io("enable proxy ARP on tap0", e))?;
    }
    Ok(())
}

/// `ip link set lo up` through SIOCSIFFLAGS.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a socket fd we own and close; the ifreq is zeroed and fully owned by this frame.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *s as libc::c_char;
        }
        let mut res = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req);
        if res == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            res = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        }
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if res < 0 {
            return Err(err);
        }
    }
    Ok(())
}
