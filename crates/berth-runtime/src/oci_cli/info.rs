//! `features` (runc's features JSON, describing this runtime) and `spec` (a default
//! config.json, as `runc spec` writes it).

use oci_spec::runtime::Spec;
use serde_json::json;

use super::args::SpecCmd;
use super::{fail, CliError, R};

/// What this runtime supports, in runc's `features` shape.
pub fn features_json() -> serde_json::Value {
    let caps: Vec<String> = crate::spec::ALL_CAPS
        .iter()
        .map(|c| c.to_string())
        .collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": oci_spec::runtime::VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync",
            "exec", "mand", "noatime", "nodev", "nodiratime", "noexec", "nomand",
            "norelatime", "nostrictatime", "nosuid", "private", "rbind", "relatime",
            "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared",
            "slave", "strictatime", "suid", "sync", "unbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                    "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                    "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32",
                    "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "dev.berth.runtime.version": env!("CARGO_PKG_VERSION"),
            "dev.berth.runtime.engine": "youki libcontainer 0.7"
        }
    })
}

pub fn features() -> R<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&features_json()).expect("features serialize")
    );
    Ok(())
}

/// runc's default spec: `sh` on a terminal in `rootfs`; `--rootless` maps the caller's ids.
pub fn default_spec(rootless: bool) -> Spec {
    let mut s = if rootless {
        Spec::rootless(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        Spec::default()
    };
    s.set_hostname(Some("berth".into()));
    if let Some(p) = s.process_mut() {
        p.set_terminal(Some(true));
        p.set_args(Some(vec!["sh".into()]));
    }
    s
}

pub fn spec(s: &SpecCmd) -> R<()> {
    let file = s.bundle.join("config.json");
    if file.exists() {
        return fail(format!("File {} exists. Remove it first", file.display()));
    }
    default_spec(s.rootless)
        .save(&file)
        .map_err(|e| CliError(format!("write {}: {e}", file.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_shape() {
        let f = features_json();
        assert_eq!(f["linux"]["cgroup"]["systemd"], false);
        assert!(f["linux"]["namespaces"].as_array().unwrap().len() == 7);
        assert!(f["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "CAP_SYS_ADMIN"));
    }

    #[test]
    fn spec_writes_once() {
        let d = tempfile::tempdir().unwrap();
        let cmd = SpecCmd {
            bundle: d.path().to_path_buf(),
            rootless: false,
        };
        spec(&cmd).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.path().join("config.json")).unwrap()).unwrap();
        assert_eq!(v["process"]["args"][0], "sh");
        assert_eq!(v["root"]["path"], "rootfs");
        assert!(spec(&cmd).unwrap_err().0.contains("exists"));
        let r = default_spec(true);
        assert!(r.linux().as_ref().unwrap().uid_mappings().is_some());
    }
}
