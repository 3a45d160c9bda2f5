//! A container's confinement options — `--security-opt`, `--device`, `--device-cgroup-rule`,
//! capabilities — checked at create (400 with Docker's wording: nothing may fail later at
//! start, and asking for more confinement must never silently give less) and turned into the
//! runtime's inputs at start.

use std::sync::OnceLock;

use super::stored::HostConfig;
use crate::error::{DaemonError, Result};
use berth_runtime::confine::{self, Device, DeviceRule};
use berth_runtime::SeccompMode;

/// What the host offers for confinement (read once per daemon).
#[derive(Debug, Clone, Copy)]
pub struct HostSecurity {
    pub apparmor: bool,
    pub selinux: bool,
    /// The daemon's capability bounding set: all a container it starts can hold.
    pub bounding: u64,
}

impl HostSecurity {
    pub fn get() -> HostSecurity {
        static HOST: OnceLock<HostSecurity> = OnceLock::new();
        *HOST.get_or_init(|| HostSecurity {
            apparmor: std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
                .is_ok_and(|s| s.trim() == "Y"),
            selinux: std::path::Path::new("/sys/fs/selinux/enforce").exists(),
            bounding: confine::bounding_set(),
        })
    }
}

/// The parsed `--security-opt` list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityOpts {
    pub seccomp: SeccompMode,
    pub no_new_privileges: bool,
    pub apparmor_profile: Option<String>,
    /// `systempaths=unconfined`: no masked or read-only paths.
    pub unconfined_paths: bool,
}

/// Everything about confinement the runtime needs for one container.
#[derive(Debug, Clone, Default)]
pub struct Confinement {
    pub opts: SecurityOpts,
    pub devices: Vec<Device>,
    pub device_rules: Vec<DeviceRule>,
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
}

fn invalid_opt(opt: &str) -> DaemonError {
    DaemonError::Invalid(format!("invalid --security-opt: {opt:?}"))
}

/// Parse `--security-opt` values as dockerd does (`key=value`, or the deprecated `key:value`).
pub fn parse_security_opts(opts: &[String], host: &HostSecurity) -> Result<SecurityOpts> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            continue; // the old spelling of label=disable
        }
        let (k, v) = opt
            .split_once('=')
            .or_else(|| opt.split_once(':'))
            .ok_or_else(|| invalid_opt(opt))?;
        match k {
            "seccomp" => {
                out.seccomp = match v {
                    "unconfined" => SeccompMode::Unconfined,
                    "builtin" | "" => SeccompMode::Default,
                    profile => {
                        berth_runtime::seccomp::validate_profile(profile)
                            .map_err(DaemonError::invalid)?;
                        SeccompMode::Custom(profile.to_string())
                    }
                }
            }
            "no-new-privileges" => {
                out.no_new_privileges =
                    crate::go_parse::parse_bool(v).ok_or_else(|| invalid_opt(opt))?;
            }
            "apparmor" => {
                if !host.apparmor {
                    if v != "unconfined" {
                        return Err(DaemonError::Invalid(format!(
                            "apparmor is not enabled on this host, cannot apply profile {v}"
                        )));
                    }
                } else if v.is_empty() {
                    return Err(invalid_opt(opt));
                } else {
                    out.apparmor_profile = Some(v.to_string());
                }
            }
            "label" => {
                if v != "disable" {
                    let why = if host.selinux {
                        "berth does not apply SELinux labels"
                    } else {
                        "SELinux is not enabled on this host"
                    };
                    return Err(DaemonError::Invalid(format!(
                        "cannot apply --security-opt {opt:?}: {why}; only label=disable is accepted"
                    )));
                }
            }
            "systempaths" => {
                if v != "unconfined" {
                    return Err(invalid_opt(opt));
                }
                out.unconfined_paths = true;
            }
            _ => return Err(invalid_opt(opt)),
        }
    }
    Ok(out)
}

/// Devices and device cgroup rules of `hc` (stats the host's device nodes).
fn devices(hc: &HostConfig) -> Result<(Vec<Device>, Vec<DeviceRule>)> {
    let mut devs = Vec::new();
    for d in hc.devices.iter().flatten() {
        let host = d.path_on_host.as_deref().unwrap_or("");
        if host.is_empty() {
            return Err(DaemonError::invalid(
                "invalid device mapping: PathOnHost is empty",
            ));
        }
        devs.extend(
            confine::devices_from_path(
                host,
                d.path_in_container.as_deref().unwrap_or(""),
                d.cgroup_permissions.as_deref().unwrap_or(""),
            )
            .map_err(DaemonError::invalid)?,
        );
    }
    let rules = hc
        .device_cgroup_rules
        .iter()
        .flatten()
        .map(|r| confine::parse_device_rule(r).map_err(DaemonError::invalid))
        .collect::<Result<Vec<_>>>()?;
    Ok((devs, rules))
}

/// Capabilities the daemon cannot grant: an error for one named in `--cap-add`, else (the
/// defaults, `ALL`, `--privileged`) a warning naming what the container runs without.
fn cap_warnings(hc: &HostConfig, bounding: u64) -> Result<Vec<String>> {
    let add = hc.cap_add.clone().unwrap_or_default();
    let caps = berth_runtime::spec::effective_caps(
        hc.privileged.unwrap_or(false),
        &add,
        &hc.cap_drop.clone().unwrap_or_default(),
    )
    .map_err(DaemonError::invalid)?;
    let (_, lacking) = confine::split_held(&caps, bounding);
    if lacking.is_empty() {
        return Ok(Vec::new());
    }
    let named = add
        .iter()
        .map(|c| berth_runtime::spec::normalize_cap(c))
        .find(|c| lacking.contains(c));
    if let Some(c) = named {
        return Err(DaemonError::Invalid(format!(
            "cannot add capability {c}: the daemon's own capability bounding set lacks it, so no container it starts can hold it"
        )));
    }
    let w = format!(
        "the daemon's capability bounding set lacks {}: the container runs without {}",
        lacking.join(", "),
        if lacking.len() == 1 { "it" } else { "them" }
    );
    tracing::warn!("{w}");
    Ok(vec![w])
}

/// Check everything at create; the warnings go to the create response.
pub fn validate(hc: &HostConfig) -> Result<Vec<String>> {
    let host = HostSecurity::get();
    parse_security_opts(hc.security_opt.as_deref().unwrap_or_default(), &host)?;
    devices(hc)?;
    cap_warnings(hc, host.bounding)
}

/// Record the masked and read-only paths a container gets, as dockerd does at create: the
/// client's lists replace the defaults, `systempaths=unconfined` empties them, a privileged
/// container has none (null) and an unset list gets the defaults, so inspect shows them.
pub fn record_system_paths(hc: &mut HostConfig) {
    let unconfined = hc
        .security_opt
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|o| o == "systempaths=unconfined" || o == "systempaths:unconfined");
    let defaults = |d: &[&str]| Some(d.iter().map(|s| s.to_string()).collect());
    if unconfined {
        hc.masked_paths = Some(Vec::new());
        hc.readonly_paths = Some(Vec::new());
    } else if !hc.privileged.unwrap_or(false) {
        if hc.masked_paths.is_none() {
            hc.masked_paths = defaults(berth_runtime::spec::DEFAULT_MASKED_PATHS);
        }
        if hc.readonly_paths.is_none() {
            hc.readonly_paths = defaults(berth_runtime::spec::DEFAULT_READONLY_PATHS);
        }
    }
}

/// The runtime's confinement inputs at start.
pub fn confinement(hc: &HostConfig) -> Result<Confinement> {
    let host = HostSecurity::get();
    let opts = parse_security_opts(hc.security_opt.as_deref().unwrap_or_default(), &host)?;
    let (devices, device_rules) = devices(hc)?;
    let (masked_paths, readonly_paths) = if opts.unconfined_paths {
        (Some(Vec::new()), Some(Vec::new()))
    } else {
        (hc.masked_paths.clone(), hc.readonly_paths.clone())
    };
    Ok(Confinement {
        opts,
        devices,
        device_rules,
        masked_paths,
        readonly_paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_LSM: HostSecurity = HostSecurity {
        apparmor: false,
        selinux: false,
        bounding: u64::MAX,
    };

    fn parse(opts: &[&str]) -> Result<SecurityOpts> {
        let v: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        parse_security_opts(&v, &NO_LSM)
    }

    fn msg(r: Result<SecurityOpts>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn security_opts_as_dockerd() {
        assert_eq!(parse(&[]).unwrap(), SecurityOpts::default());
        let o = parse(&["seccomp=unconfined", "no-new-privileges"]).unwrap();
        assert_eq!(o.seccomp, SeccompMode::Unconfined);
        assert!(o.no_new_privileges);
        assert!(
            parse(&["no-new-privileges=true"])
                .unwrap()
                .no_new_privileges
        );
        assert!(
            !parse(&["no-new-privileges:false"])
                .unwrap()
                .no_new_privileges
        );
        assert_eq!(
            parse(&["seccomp:unconfined"]).unwrap().seccomp,
            SeccompMode::Unconfined
        );
        let profile = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#;
        assert_eq!(
            parse(&[&format!("seccomp={profile}")]).unwrap().seccomp,
            SeccompMode::Custom(profile.into())
        );
        assert!(parse(&["systempaths=unconfined"]).unwrap().unconfined_paths);
        assert_eq!(
            parse(&[
                "apparmor=unconfined",
                "label=disable",
                "label:disable",
                "disable"
            ])
            .unwrap(),
            SecurityOpts::default()
        );
    }

    #[test]
    fn what_cannot_be_honoured_is_refused() {
        assert_eq!(msg(parse(&["bogus"])), "invalid --security-opt: \"bogus\"");
        assert_eq!(
            msg(parse(&["foo=bar"])),
            "invalid --security-opt: \"foo=bar\""
        );
        assert_eq!(
            msg(parse(&["no-new-privileges=maybe"])),
            "invalid --security-opt: \"no-new-privileges=maybe\""
        );
        assert_eq!(
            msg(parse(&["apparmor=docker-default"])),
            "apparmor is not enabled on this host, cannot apply profile docker-default"
        );
        assert!(msg(parse(&["label=level:s0:c100,c200"])).contains("only label=disable"));
        assert!(msg(parse(&["systempaths=confined"])).contains("systempaths=confined"));
        assert!(msg(parse(&["seccomp={not json"])).starts_with("invalid seccomp profile"));
        assert!(
            msg(parse(&[r#"seccomp={"defaultAction":"SCMP_ACT_NOPE"}"#]))
                .starts_with("invalid seccomp profile")
        );
        // With AppArmor on the host, a profile is passed on.
        let aa = HostSecurity {
            apparmor: true,
            ..NO_LSM
        };
        let o = parse_security_opts(&["apparmor=docker-default".into()], &aa).unwrap();
        assert_eq!(o.apparmor_profile.as_deref(), Some("docker-default"));
    }

    #[test]
    fn capabilities_beyond_the_daemon() {
        let lacking = !(1u64 << 24); // no CAP_SYS_RESOURCE
        let hc = |privileged: bool, add: &[&str]| HostConfig {
            privileged: Some(privileged),
            cap_add: Some(add.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert!(cap_warnings(&hc(false, &[]), lacking).unwrap().is_empty());
        let w = cap_warnings(&hc(true, &[]), lacking).unwrap();
        assert_eq!(
            w,
            ["the daemon's capability bounding set lacks CAP_SYS_RESOURCE: the container runs without it"]
        );
        assert_eq!(cap_warnings(&hc(false, &["ALL"]), lacking).unwrap(), w);
        let e = cap_warnings(&hc(false, &["sys_resource"]), lacking).unwrap_err();
        assert!(e
            .to_string()
            .contains("cannot add capability CAP_SYS_RESOURCE"));
        assert!(cap_warnings(&hc(true, &[]), u64::MAX).unwrap().is_empty());
    }

    #[test]
    fn devices_are_checked_at_create() {
        let hc = |host: &str| HostConfig {
            devices: Some(vec![crate::containers::stored::DeviceMapping {
                path_on_host: Some(host.into()),
                path_in_container: Some("/dev/nulo".into()),
                cgroup_permissions: Some("rwm".into()),
            }]),
            ..Default::default()
        };
        let (d, _) = devices(&hc("/dev/zero")).unwrap();
        assert_eq!(
            (d[0].major, d[0].minor, d[0].path.as_str()),
            (1, 5, "/dev/nulo")
        );
        assert_eq!(
            devices(&hc("/dev/x-berth-none")).unwrap_err().to_string(),
            "error gathering device information while adding custom device \"/dev/x-berth-none\": no such file or directory"
        );
        let bad_rule = HostConfig {
            device_cgroup_rules: Some(vec!["c 1:5".into()]),
            ..Default::default()
        };
        assert_eq!(
            devices(&bad_rule).unwrap_err().to_string(),
            "invalid device cgroup format 'c 1:5'"
        );
    }

    #[test]
    fn system_paths_recorded_as_dockerd_does() {
        let rec = |hc: HostConfig| {
            let mut hc = hc;
            record_system_paths(&mut hc);
            (hc.masked_paths, hc.readonly_paths)
        };
        let (m, r) = rec(HostConfig::default());
        assert_eq!(
            m.unwrap().len(),
            berth_runtime::spec::DEFAULT_MASKED_PATHS.len()
        );
        assert_eq!(r.unwrap()[0], "/proc/bus");
        let own = HostConfig {
            masked_paths: Some(vec!["/proc/kcore".into()]),
            readonly_paths: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(rec(own), (Some(vec!["/proc/kcore".into()]), Some(vec![])));
        let unconfined = HostConfig {
            security_opt: Some(vec!["systempaths=unconfined".into()]),
            ..Default::default()
        };
        assert_eq!(rec(unconfined), (Some(vec![]), Some(vec![])));
        let privileged = HostConfig {
            privileged: Some(true),
            ..Default::default()
        };
        assert_eq!(rec(privileged), (None, None));
    }
}
