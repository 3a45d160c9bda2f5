//! Thin apply layer over rtnetlink and namespaces: bridges, veth pairs, addresses, routes,
//! named network namespaces (bind mounts) and the per-namespace sysctls berth needs.

use std::fs::File;
use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use ipnet::IpNet;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{Error, Result};

/// A netlink handle on the calling thread's network namespace (the host's, for the daemon).
pub async fn connect() -> Result<Handle> {
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(Error::io("opening", "netlink socket"))?;
    tokio::spawn(conn);
    Ok(handle)
}

fn errno_of(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

/// Index of the link called `name`, `None` when there is none.
pub async fn link_index(h: &Handle, name: &str) -> Result<Option<u32>> {
    let mut s = h.link().get().match_name(name.to_string()).execute();
    match s.try_next().await {
        Ok(Some(m)) => Ok(Some(m.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno_of(&e) == Some(libc_errno::ENODEV) => Ok(None),
        Err(e) => Err(Error::netlink(format!("get link {name}"))(e)),
    }
}

mod libc_errno {
    pub const ENODEV: i32 = nix::errno::Errno::ENODEV as i32;
    pub const EEXIST: i32 = nix::errno::Errno::EEXIST as i32;
}

/// Names of all links in the handle's namespace.
pub async fn link_names(h: &Handle) -> Result<Vec<String>> {
    let msgs: Vec<LinkMessage> = h
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(Error::netlink("list links"))?;
    Ok(msgs
        .iter()
        .filter_map(|m| {
            m.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })
        })
        .collect())
}

/// Create bridge `name` (if missing) with the given gateway addresses, and bring it up.
/// Returns its index. The bridge gets a fixed MAC derived from its first address: a bridge
/// without one takes the lowest MAC of its ports, so it would change whenever a container
/// leaves, and the other containers' ARP entries for the gateway would go stale.
pub async fn ensure_bridge(h: &Handle, name: &str, addrs: &[(IpAddr, u8)]) -> Result<u32> {
    let idx = match link_index(h, name).await? {
        Some(i) => i,
        None => {
            h.link()
                .add(
                    LinkBridge::new(name)
                        .address(
                            addrs
                                .first()
                                .map_or([0x02, 0x42, 0, 0, 0, 1], |(ip, _)| {
                                    crate::ipam::mac_for(*ip)
                                })
                                .to_vec(),
                        )
                        .build(),
                )
                .execute()
                .await
                .map_err(Error::netlink(format!("create bridge {name}")))?;
            link_index(h, name)
                .await?
                .ok_or_else(|| Error::Internal(format!("bridge {name} vanished after creation")))?
        }
    };
    for (ip, prefix) in addrs {
        if ip.is_ipv6() {
            write_sysctl(&format!("net/ipv6/conf/{name}/accept_dad"), "0");
        }
        match h.address().add(idx, *ip, *prefix).execute().await {
            Ok(()) => {}
            Err(e) if errno_of(&e) == Some(libc_errno::EEXIST) => {}
            Err(e) => return Err(Error::netlink(format!("add {ip}/{prefix} to {name}"))(e)),
        }
    }
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(Error::netlink(format!("set {name} up")))?;
    Ok(idx)
}

/// Delete a link by name; a missing link is not an error.
pub async fn delete_link(h: &Handle, name: &str) -> Result<()> {
    if let Some(idx) = link_index(h, name).await? {
        match h.link().del(idx).execute().await {
            Ok(()) => {}
            Err(e) if errno_of(&e) == Some(libc_errno::ENODEV) => {}
            Err(e) => return Err(Error::netlink(format!("delete link {name}"))(e)),
        }
    }
    Ok(())
}

/// Create a veth pair in one netlink request: `host` up and on the bridge, `peer` already inside
/// `netns`. One request, so a daemon killed mid-way leaves either nothing or a pair the
/// stray-veth sweep finds on its bridge (and the namespace's removal deletes) — never a detached
/// pair in the host namespace that nothing owns, as the create-then-move sequence could.
/// Hairpin mode is a second request (the kernel takes bridge-port attributes only on an
/// existing port); if it fails, the pair is undone with the namespace like any failed connect.
pub async fn create_veth(
    h: &Handle,
    host: &str,
    peer: &str,
    bridge_idx: u32,
    netns: &Path,
) -> Result<()> {
    use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
    use rtnetlink::LinkMessageBuilder;
    use std::os::fd::AsRawFd;
    let ns = File::open(netns).map_err(Error::io("opening netns", netns))?;
    let peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer.to_string())
        .setns_by_fd(ns.as_raw_fd())
        .build();
    let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host.to_string())
        .controller(bridge_idx)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
        .build();
    h.link()
        .add(msg)
        .execute()
        .await
        .map_err(Error::netlink(format!(
            "create veth {host} on the bridge with {peer} in {}",
            netns.display()
        )))?;
    // Hairpin: a container reaching its own published port through a host address is DNATed
    // back to itself, so the bridge must send the frame out of the port it came in on.
    // (dockerd does this when it runs without its userland proxy; berth has no proxy.)
    let idx = link_index(h, host)
        .await?
        .ok_or_else(|| Error::Internal(format!("veth {host} vanished after its creation")))?;
    h.link()
        .set_port(rtnetlink::LinkBridgePort::new(idx).hairpin(true).build())
        .execute()
        .await
        .map_err(Error::netlink(format!("set hairpin mode on {host}")))
}

/// Inside a container namespace: rename `peer` to the first free `ethN`, set its MAC, bring it
/// up, add the addresses and (when `gateway` is given and no default route exists) a default
/// route. Returns the interface name.
pub async fn configure_container_if(
    h: &Handle,
    peer: &str,
    mac: [u8; 6],
    addrs: &[(IpAddr, u8)],
    gateways: &[IpAddr],
) -> Result<String> {
    let names = link_names(h).await?;
    let ifname = (0..)
        .map(|i| format!("eth{i}"))
        .find(|n| !names.contains(n))
        .expect("unbounded range");
    let idx = link_index(h, peer)
        .await?
        .ok_or_else(|| Error::Internal(format!("{peer} not in namespace")))?;
    h.link()
        .set(
            LinkUnspec::new_with_index(idx)
                .name(ifname.clone())
                .address(mac.to_vec())
                .build(),
        )
        .execute()
        .await
        .map_err(Error::netlink(format!("rename {peer} to {ifname}")))?;
    if addrs.iter().any(|(ip, _)| ip.is_ipv6()) {
        write_sysctl(&format!("net/ipv6/conf/{ifname}/accept_dad"), "0");
    }
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(Error::netlink(format!("set {ifname} up")))?;
    for (ip, prefix) in addrs {
        h.address()
            .add(idx, *ip, *prefix)
            .execute()
            .await
            .map_err(Error::netlink(format!("add {ip}/{prefix} to {ifname}")))?;
    }
    for gw in gateways {
        let msg = match gw {
            IpAddr::V4(g) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .output_interface(idx)
                .gateway(*g)
                .build(),
            IpAddr::V6(g) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .output_interface(idx)
                .gateway(*g)
                .build(),
        };
        match h.route().add(msg).execute().await {
            Ok(()) => {}
            // an earlier network already gave the container its default route
            Err(e) if errno_of(&e) == Some(libc_errno::EEXIST) => {}
            Err(e) => return Err(Error::netlink(format!("add default route via {gw}"))(e)),
        }
    }
    Ok(ifname)
}

/// Destination prefixes of the IPv4 and IPv6 routes in the main table (for subnet overlap checks).
pub async fn route_prefixes(h: &Handle, skip_oif: Option<u32>) -> Result<Vec<IpNet>> {
    let mut out = vec![];
    let reqs = [
        RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
        RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
    ];
    for req in reqs {
        let routes: Vec<_> = h
            .route()
            .get(req)
            .execute()
            .try_collect()
            .await
            .map_err(Error::netlink("list routes"))?;
        for r in routes {
            let len = r.header.destination_prefix_length;
            if len == 0 {
                continue; // default route covers everything; it is not a conflict
            }
            let oif = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            });
            if skip_oif.is_some() && oif == skip_oif {
                continue; // a route of the device being (re)configured is not a conflict
            }
            for a in &r.attributes {
                if let RouteAttribute::Destination(d) = a {
                    let ip: Option<IpAddr> = match d {
                        RouteAddress::Inet(v) => Some((*v).into()),
                        RouteAddress::Inet6(v) => Some((*v).into()),
                        _ => None,
                    };
                    if let Some(net) = ip.and_then(|ip| IpNet::new(ip, len).ok()) {
                        if !net.network().is_loopback() && !net.network().is_multicast() {
                            out.push(net.trunc());
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Write a value under /proc/sys for the calling thread's network namespace. Failures are
/// logged: the knobs are best effort (e.g. IPv6 disabled on the host).
pub fn write_sysctl(key: &str, value: &str) -> bool {
    let path = Path::new("/proc/sys").join(key);
    match std::fs::write(&path, value) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "could not set sysctl");
            false
        }
    }
}

/// Run `f` with a netlink handle inside the namespace at `netns`, on a dedicated thread (so no
/// thread of the caller's runtime ever changes namespace).
pub async fn in_netns<T, F, Fut>(netns: &Path, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>>,
{
    let path = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || {
            let r = (|| {
                let fd = File::open(&path).map_err(Error::io("opening netns", &path))?;
                setns(&fd, CloneFlags::CLONE_NEWNET).map_err(|source| Error::Netns {
                    path: path.clone(),
                    op: "setns",
                    source,
                })?;
                run_local(f)
            })();
            let _ = tx.send(r);
        })
        .map_err(Error::io("spawning thread for", netns))?;
    rx.await
        .map_err(|_| Error::Internal("netns worker thread panicked".into()))?
}

fn run_local<T, F, Fut>(f: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("starting runtime for", "netns worker"))?;
    rt.block_on(async {
        let h = connect().await?;
        f(h).await
    })
}

/// Create a named network namespace: a new netns bind-mounted on `path` (the file is created),
/// with loopback up. Runs on a dedicated thread.
pub async fn create_netns(path: &Path) -> Result<()> {
    let path = path.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berth-netns-new".into())
        .spawn(move || {
            let _ = tx.send(create_netns_on_this_thread(&path));
        })
        .map_err(Error::io("spawning thread for", "netns creation"))?;
    rx.await
        .map_err(|_| Error::Internal("netns creation thread panicked".into()))?
}

fn create_netns_on_this_thread(path: &PathBuf) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(Error::io("creating netns file", path))?;
    let r = (|| {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|source| Error::Netns {
            path: path.clone(),
            op: "unshare",
            source,
        })?;
        mount(
            Some("/proc/thread-self/ns/net"),
            path.as_path(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|source| Error::Netns {
            path: path.clone(),
            op: "bind mount",
            source,
        })?;
        run_local(|h| async move {
            let idx = link_index(&h, "lo")
                .await?
                .ok_or_else(|| Error::Internal("no lo".into()))?;
            h.link()
                .set(LinkUnspec::new_with_index(idx).up().build())
                .execute()
                .await
                .map_err(Error::netlink("set lo up"))
        })
    })();
    if r.is_err() {
        let _ = umount2(path.as_path(), MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(path);
    }
    r
}

/// Unmount and delete a named network namespace; a missing one is not an error.
pub fn remove_netns(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
        Err(source) => {
            return Err(Error::Netns {
                path: path.to_path_buf(),
                op: "unmount",
                source,
            })
        }
    }
    std::fs::remove_file(path).map_err(Error::io("removing", path))
}
