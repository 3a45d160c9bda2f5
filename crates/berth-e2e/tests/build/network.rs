//! RUN steps' networks through the daemon: the default puts each step in its own netns on the
//! engine's bridge (an address in the bridge's subnet, a default route, the netns removed after
//! the step); `RUN --network=host` shares the host's namespace. The test binary gets its own
//! bridge, nft table and subnet ([`BridgeEnv`]), removed when the tests end.

use std::process::Command;

use crate::common;

/// A private default bridge for the in-process daemons of this binary (set before any thread
/// starts); the link and nft table are deleted on drop.
pub struct BridgeEnv {
    bridge: String,
    table: String,
}

impl BridgeEnv {
    pub fn set() -> BridgeEnv {
        let pid = std::process::id();
        let (a, b) = (200 + (pid >> 8) % 50, pid & 0xff);
        let e = BridgeEnv {
            bridge: format!("berthb{:x}", pid & 0xfffff),
            table: format!("berthb{pid}"),
        };
        std::env::set_var("BERTH_DEFAULT_BRIDGE", &e.bridge);
        std::env::set_var("BERTH_NFT_TABLE", &e.table);
        std::env::set_var("BERTH_DEFAULT_BRIDGE_SUBNET", format!("10.{a}.{b}.0/24"));
        e
    }
}

impl BridgeEnv {
    /// Delete the bridge and table a previous daemon of this process left (a fresh daemon
    /// root cannot adopt an existing bridge's addresses).
    pub fn clear() {
        let (Ok(bridge), Ok(table)) = (
            std::env::var("BERTH_DEFAULT_BRIDGE"),
            std::env::var("BERTH_NFT_TABLE"),
        ) else {
            return;
        };
        BridgeEnv { bridge, table }.remove();
    }

    fn remove(&self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(std::process::Stdio::null())
            .status();
        for fam in ["inet", "ip", "ip6"] {
            let _ = Command::new("nft")
                .args(["delete", "table", fam, &self.table])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

impl Drop for BridgeEnv {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Deletes a host link on drop (also when the test panics).
struct LinkGuard(String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn netns_of_this_process() -> String {
    std::fs::read_link("/proc/self/ns/net")
        .unwrap()
        .display()
        .to_string()
}

pub fn run_network() {
    let test = "run_steps_get_the_bridge_or_the_host_network";
    if !berth_testutil::require_root(test)
        || !berth_testutil::require_cmds(test, &["docker", "ip", "nft"])
    {
        return;
    }
    let Some(archive) = common::busybox(test) else {
        return;
    };
    let subnet = std::env::var("BERTH_DEFAULT_BRIDGE_SUBNET").unwrap();
    let subnet_prefix = subnet.trim_end_matches("0/24");
    BridgeEnv::clear();
    let d = common::TestDaemon::start();
    d.docker_ok(&["load", "-i", common::path_str(&archive)]);
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\n\
         RUN echo \"STEPNS=$(readlink /proc/self/ns/net)\" && ip -4 -o addr show eth0 && ip route | grep '^default'\n\
         RUN --network=host echo \"HOSTNS=$(readlink /proc/self/ns/net)\"\n",
    )
    .unwrap();
    let o = Command::new("docker")
        .args(["build", "--no-cache", "-t", "net-built:1"])
        .arg(&ctx)
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let host_ns = netns_of_this_process();
    let line = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in: {out}"))
            .to_string()
    };
    assert_ne!(line("STEPNS="), host_ns, "a default RUN has its own netns");
    assert!(
        out.contains(&format!("inet {subnet_prefix}")),
        "eth0 has an address on the bridge ({subnet_prefix}x): {out}"
    );
    assert_eq!(
        line("HOSTNS="),
        host_ns,
        "RUN --network=host shares the host's"
    );
    // networkmode=<a user network>: RUN joins it; an unknown one is refused.
    let (a, b) = (
        200 + (std::process::id() >> 8) % 50,
        (std::process::id() + 1) & 0xff,
    );
    let user_net = format!("bnet{}", std::process::id());
    // A bridge name we know, deleted on drop: an in-process daemon leaves user networks' bridges
    // behind when an assertion below fails before `network rm`.
    let user_br = LinkGuard(format!("bnb{:x}", std::process::id() & 0xfffff));
    d.docker_ok(&[
        "network",
        "create",
        "--subnet",
        &format!("10.{a}.{b}.0/24"),
        "-o",
        &format!("com.docker.network.bridge.name={}", user_br.0),
        &user_net,
    ]);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN ip -4 -o addr show eth0\n",
    )
    .unwrap();
    let build_on = |net: &str| {
        Command::new("docker")
            .args(["build", "--no-cache", "--network", net, "-t", "net-built:2"])
            .arg(&ctx)
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .output()
            .unwrap()
    };
    let o = build_on(&user_net);
    let out2 = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out2}");
    assert!(out2.contains(&format!("inet 10.{a}.{b}.")), "{out2}");
    let o = build_on("no-such-net");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success() && err.contains("network no-such-net not found"),
        "{err}"
    );
    d.docker_ok(&["network", "rm", &user_net]);
    let netns_dir = d.dir.path().join("run/netns");
    let left: Vec<_> = std::fs::read_dir(&netns_dir)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "step netns left behind: {left:?}");
}
