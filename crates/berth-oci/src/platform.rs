//! Platforms (`os/arch[/variant]`) and matching against the host, for index selection.

use std::fmt;

/// An OCI platform.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl Platform {
    /// The platform of the machine berth runs on, in Go's GOARCH names.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Platform {
            architecture: arch.to_string(),
            os: "linux".to_string(),
            variant: if arch == "arm64" {
                Some("v8".into())
            } else {
                None
            },
            os_version: None,
        }
    }

    /// Parse a platform as containerd's `platforms.Parse` (what dockerd uses): `os/arch`,
    /// `os/arch/variant`, or one word naming a known OS or architecture (the other part is the
    /// host's). Errors read as containerd's, e.g. `"foobar": unknown operating system or
    /// architecture: invalid argument`.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = |why: &str| format!("{s:?}: {why}: invalid argument");
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("invalid platform, expected os/arch[/variant]"));
        }
        let host = Platform::host();
        let platform = |os: &str, arch: &str, variant: Option<&str>| Platform {
            os: os.to_lowercase(),
            architecture: normalize_arch(&arch.to_lowercase()),
            variant: variant.map(str::to_string),
            os_version: None,
        };
        match parts.as_slice() {
            [one] if KNOWN_OS.contains(&one.to_lowercase().as_str()) => {
                let mut p = host.clone();
                p.os = one.to_lowercase();
                Ok(p)
            }
            [one] if KNOWN_ARCH.contains(&normalize_arch(&one.to_lowercase()).as_str()) => {
                Ok(platform(&host.os, one, None))
            }
            [_] => Err(bad("unknown operating system or architecture")),
            [os, arch] => Ok(platform(os, arch, None)),
            [os, arch, variant] => Ok(platform(os, arch, Some(variant))),
            _ => Err(bad("invalid platform, expected os/arch[/variant]")),
        }
    }

    /// Whether an image for `self` runs on `want` (os and arch equal; variant equal when both set).
    pub fn matches(&self, want: &Platform) -> bool {
        self.os == want.os
            && self.architecture == want.architecture
            && match (&self.variant, &want.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// Go's GOOS values, as containerd's `isKnownOS`.
const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];

/// Go's GOARCH values, as containerd's `isKnownArch`.
const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

fn normalize_arch(a: &str) -> String {
    match a {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.to_string(),
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let p = Platform::parse("linux/x86_64").unwrap();
        assert_eq!(p.architecture, "amd64");
        assert!(p.matches(&Platform::parse("linux/amd64").unwrap()));
        assert!(!p.matches(&Platform::parse("linux/arm64").unwrap()));
        assert_eq!(Platform::parse("linux").unwrap(), Platform::host());
        assert_eq!(Platform::parse("arm64").unwrap().architecture, "arm64");
        assert_eq!(
            Platform::parse("foobar").unwrap_err(),
            "\"foobar\": unknown operating system or architecture: invalid argument"
        );
        assert!(Platform::parse("linux//x").is_err());
        // An OS nobody knows still parses with an arch: the image then matches no platform.
        assert_eq!(Platform::parse("plan10/amd64").unwrap().os, "plan10");
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
    }
}
