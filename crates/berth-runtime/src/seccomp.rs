//! Docker-format seccomp profiles (default and custom JSON) and their translation to OCI.
//!
//! Docker's profile format extends OCI's with `includes`/`excludes` conditions on the
//! architecture, the container's capabilities and the kernel version; [`to_oci`] resolves
//! those conditions for one container and yields a plain OCI `linux.seccomp` object.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    #[serde(default, deserialize_with = "null_vec")]
    pub arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "null_vec")]
    pub syscalls: Vec<Rule>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default, deserialize_with = "null_vec")]
    pub sub_architectures: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default, deserialize_with = "null_vec")]
    pub names: Vec<String>,
    /// Old single-name form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_vec")]
    pub args: Vec<Arg>,
    #[serde(default)]
    pub includes: Filter,
    #[serde(default)]
    pub excludes: Filter,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default, deserialize_with = "null_vec")]
    pub arches: Vec<String>,
    #[serde(default, deserialize_with = "null_vec")]
    pub caps: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

fn null_vec<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Parse a custom profile in Docker's JSON format (`--security-opt seccomp=profile.json`).
pub fn parse_profile(json: &str) -> Result<Profile> {
    let p: Profile =
        serde_json::from_str(json).map_err(|e| Error::InvalidSeccomp(format!("{e}")))?;
    if p.default_action.is_empty() {
        return Err(Error::InvalidSeccomp("defaultAction is missing".into()));
    }
    Ok(p)
}

/// Check a custom profile completely before a container is created with it: it parses, and
/// its resolution for this host is a valid OCI seccomp object (known actions, operators and
/// architectures), so a container with it cannot fail later at start for its profile.
pub fn validate_profile(json: &str) -> Result<()> {
    let p = parse_profile(json)?;
    let all: Vec<String> = crate::spec::ALL_CAPS
        .iter()
        .map(|c| c.to_string())
        .collect();
    let target = Target {
        arch: Target::host_arch(),
        caps: &all,
        kernel: (u32::MAX, u32::MAX),
        x32_abi: true,
    };
    serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(to_oci(&p, &target))
        .map(|_| ())
        .map_err(|e| Error::InvalidSeccomp(e.to_string()))
}

/// What a profile's conditions are evaluated against.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// Go-style arch name: amd64, arm64, ...
    pub arch: &'a str,
    /// Capabilities the container's process will hold, as `CAP_…` names.
    pub caps: &'a [String],
    /// Kernel version (major, minor).
    pub kernel: (u32, u32),
    /// Whether the kernel runs x32 programs (see [`crate::spec::HostInfo::x32_abi`]).
    pub x32_abi: bool,
}

impl Target<'_> {
    /// The Go-style architecture name of the machine this was compiled for.
    pub fn host_arch() -> &'static str {
        match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "s390x" => "s390x",
            "powerpc64" => "ppc64le",
            "riscv64" => "riscv64",
            other => other,
        }
    }

    /// Parse `uname -r` style text ("6.1.0-18-amd64") into (major, minor).
    pub fn parse_kernel(release: &str) -> (u32, u32) {
        let mut it = release
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }
}

fn seccomp_arch(go_arch: &str) -> &'static str {
    match go_arch {
        "amd64" => "SCMP_ARCH_X86_64",
        "386" | "x86" => "SCMP_ARCH_X86",
        "x32" => "SCMP_ARCH_X32",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "s390x" => "SCMP_ARCH_S390X",
        "s390" => "SCMP_ARCH_S390",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => "SCMP_ARCH_NATIVE",
    }
}

fn filter_matches(f: &Filter, t: &Target) -> (bool, bool, bool) {
    let arch = f.arches.iter().any(|a| a == t.arch);
    let caps = f.caps.iter().any(|c| t.caps.iter().any(|h| h == c));
    let kernel = f.min_kernel.as_deref().is_some_and(|k| {
        let want = Target::parse_kernel(k);
        t.kernel >= want
    });
    (arch, caps, kernel)
}

fn rule_applies(r: &Rule, t: &Target) -> bool {
    let (arch, caps, kernel) = filter_matches(&r.includes, t);
    if !r.includes.arches.is_empty() && !arch {
        return false;
    }
    if !r.includes.caps.is_empty() && !caps {
        return false;
    }
    if r.includes.min_kernel.is_some() && !kernel {
        return false;
    }
    let (arch, caps, _) = filter_matches(&r.excludes, t);
    if (!r.excludes.arches.is_empty() && arch) || (!r.excludes.caps.is_empty() && caps) {
        return false;
    }
    true
}

/// Resolve a Docker-format profile for one container into an OCI `linux.seccomp` JSON object.
pub fn to_oci(p: &Profile, t: &Target) -> Value {
    let mut arches: Vec<String> = p.architectures.clone();
    if arches.is_empty() {
        let native = seccomp_arch(t.arch);
        if let Some(m) = p.arch_map.iter().find(|m| m.architecture == native) {
            arches.push(m.architecture.clone());
            // On a kernel without the x32 ABI no x32 program can run, so the filter needs no
            // x32 section. The one difference: a raw x32 syscall (bit 30 set) then hits
            // libseccomp's bad-arch action (SIGSYS) where the kernel would say ENOSYS. Each
            // sub-architecture costs libseccomp a full extra compile (x32: 6-12 ms per start).
            arches.extend(
                m.sub_architectures
                    .iter()
                    .filter(|a| t.x32_abi || a.as_str() != "SCMP_ARCH_X32")
                    .cloned(),
            );
        }
    }
    let mut syscalls = Vec::new();
    for r in p.syscalls.iter().filter(|r| rule_applies(r, t)) {
        let mut names = r.names.clone();
        if let Some(n) = &r.name {
            names.push(n.clone());
        }
        if names.is_empty() {
            continue;
        }
        let mut s = json!({ "names": names, "action": r.action });
        if let Some(e) = r.errno_ret {
            s["errnoRet"] = json!(e);
        }
        if !r.args.is_empty() {
            s["args"] = Value::Array(
                r.args
                    .iter()
                    .map(|a| json!({"index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op}))
                    .collect(),
            );
        }
        syscalls.push(s);
    }
    let mut out =
        json!({ "defaultAction": p.default_action, "architectures": arches, "syscalls": syscalls });
    if let Some(e) = p.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    out
}
