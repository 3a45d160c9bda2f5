//! Bad input end to end (real docker CLI and raw API calls through curl against a berth
//! daemon on a temp root): out-of-range settings are refused at create and update with
//! dockerd's 400 message (docker exits 125, nothing is created), and hostile or broken
//! archives PUT into a container answer 400 without changing anything outside it.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::cli::Daemon;

/// The container IDs the daemon has (all states).
fn all_ids(d: &Daemon) -> Vec<String> {
    d.ok(&["ps", "-aq", "--no-trunc"])
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn out_of_range_settings_are_refused_at_create() {
    let Some(d) = Daemon::start("out_of_range_settings_are_refused_at_create") else {
        return;
    };
    // Before, each of these was accepted at create (and failed at start with a 500, or ran
    // with the setting ignored).
    let cases: &[(&[&str], &str)] = &[
        (&["--memory", "4m"], "Minimum memory limit allowed is 6MB"),
        (
            &["--oom-score-adj", "-1001"],
            "Invalid value -1001, range for oom score adj is [-1000, 1000]",
        ),
        (
            &["--cpuset-cpus", "8000"],
            "Requested CPUs are not available - requested 8000, available: ",
        ),
        (
            &["--cpuset-cpus", "0-x"],
            "Invalid value 0-x for cpuset cpus: invalid format: 0-x",
        ),
        (
            &["--cpu-period", "999"],
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        (
            &["--cpu-quota", "500"],
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ),
        (
            &["--blkio-weight", "5"],
            "Range of blkio weight is from 10 to 1000",
        ),
        (
            &["--restart", "sometimes"],
            "invalid restart policy: unknown policy 'sometimes'",
        ),
        (
            &["--log-opt", "max-size=10x"],
            "invalid log opt max-size: invalid size: '10x'",
        ),
        (
            &["--log-opt", "max-sise=1m"],
            "unknown log opt 'max-sise' for json-file log driver",
        ),
        (
            &["--memory-reservation", "1m"],
            "Minimum memory reservation allowed is 6MB",
        ),
    ];
    let mut failures = Vec::new();
    for (flags, want) in cases {
        // `docker run` exits 125 when the create is refused (`docker create` exits 1).
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.extend(["busybox", "true"]);
        let o = d.docker(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.code() != Some(125) || !err.contains(want) {
            failures.push(format!(
                "{flags:?}: exit {:?}, stderr {err:?}, want {want:?}",
                o.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(all_ids(&d).is_empty(), "a refused create left a container");

    // Raw API bodies the docker CLI would refuse itself.
    let api_cases: &[(&str, &str)] = &[
        (r#"{"CpuShares":-5}"#, "invalid CPU shares -5"),
        (r#"{"ShmSize":-1}"#, "SHM size can not be less than 0"),
        (
            r#"{"PortBindings":{"70000/tcp":[{"HostPort":"8080"}]}}"#,
            r#"invalid port specification: \"70000/tcp\""#,
        ),
        (
            r#"{"PortBindings":{"80/xyz":[{"HostPort":"8080"}]}}"#,
            r#"invalid port specification: \"80/xyz\""#,
        ),
        (
            r#"{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":-1}}"#,
            "invalid restart policy: maximum retry count cannot be negative",
        ),
        (
            r#"{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}"#,
            "can't create 'AutoRemove' container with restart policy",
        ),
        (
            r#"{"Ulimits":[{"Name":"nofile","Soft":2048,"Hard":1024}]}"#,
            "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024",
        ),
        (
            r#"{"Sysctls":{"kernel.xyz":"1"}}"#,
            "sysctl 'kernel.xyz' is not allowed",
        ),
    ];
    for (hc, want) in api_cases {
        let body = format!(r#"{{"Image":"busybox","Cmd":["true"],"HostConfig":{hc}}}"#);
        let (code, text) = d.api("POST", "/containers/create", Some(&body));
        if code != 400 || !text.contains(want) {
            failures.push(format!("{hc}: {code} {text}, want 400 {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(all_ids(&d).is_empty(), "a refused create left a container");

    // Update follows the same rules; the container keeps its settings.
    let id = d.ok(&["create", "--memory", "64m", "busybox", "true"]);
    for (body, want) in [
        (
            r#"{"Memory":1048576}"#,
            "Minimum memory limit allowed is 6MB",
        ),
        (
            r#"{"CpusetCpus":"8000"}"#,
            "Requested CPUs are not available - requested 8000",
        ),
        (
            r#"{"RestartPolicy":{"Name":"sometimes"}}"#,
            "invalid restart policy: unknown policy 'sometimes'",
        ),
        (
            r#"{"BlkioWeight":2000}"#,
            "Range of blkio weight is from 10 to 1000",
        ),
    ] {
        let (code, text) = d.api("POST", &format!("/containers/{id}/update"), Some(body));
        assert_eq!(code, 400, "{body}: {text}");
        assert!(text.contains(want), "{body}: {text}");
    }
    assert_eq!(d.inspect(&id, "{{.HostConfig.Memory}}"), "67108864");
    let o = d.docker(&["update", "--cpu-quota", "500", &id]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("CPU cfs quota can not be less than 1ms"),
        "{o:?}"
    );
    d.ok(&["rm", &id]);
    d.finish();
}

/// `PUT /containers/{id}/archive?path=…` with `body` as the raw request body.
fn put_archive(d: &Daemon, id: &str, path: &str, body: &[u8]) -> (u16, String) {
    let f = d.dir.path().join("put-body");
    std::fs::write(&f, body).unwrap();
    let o = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "PUT"])
        .arg("--unix-socket")
        .arg(d.sock())
        .args(["-H", "Content-Type: application/x-tar"])
        .arg("--data-binary")
        .arg(format!("@{}", f.display()))
        .arg(format!(
            "http://localhost/containers/{id}/archive?path={path}"
        ))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let (text, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), text.to_string())
}

/// A tar entry with a raw name (hostile names cannot be built through tar's checked API).
fn raw_tar(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).unwrap().next().is_none()
}

#[test]
fn hostile_archive_put_is_a_400_and_changes_nothing_outside() {
    let Some(d) = Daemon::start("hostile_archive_put_is_a_400_and_changes_nothing_outside") else {
        return;
    };
    let outside = d.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let abs_out = outside.display().to_string();
    let id = d.ok(&["create", "busybox", "true"]);
    let big = vec![b'x'; 8192];
    let whole = raw_tar(&[("big.bin", tar::EntryType::Regular, &big, "")]);
    let escape = format!("../../../../../../../..{abs_out}/x");
    // Before, the first three answered 500 (an I/O error of the daemon).
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not a tar", b"hello, I am not an archive\n".repeat(40)),
        ("truncated header", whole[..200].to_vec()),
        ("truncated data", whole[..512 + 100].to_vec()),
        (
            "dot-dot escape",
            raw_tar(&[(&escape, tar::EntryType::Regular, b"pwned", "")]),
        ),
    ];
    let mut failures = Vec::new();
    for (what, body) in &cases {
        let (code, text) = put_archive(&d, &id, "/tmp", body);
        if code != 400 || !text.contains("message") {
            failures.push(format!("{what}: {code} {text}"));
        }
    }
    // An absolute symlink to the host dir, then a file through it: stays inside the rootfs.
    let trick = raw_tar(&[
        ("link", tar::EntryType::Symlink, b"", &abs_out),
        ("link/pwned", tar::EntryType::Regular, b"pwned", ""),
    ]);
    let (code, text) = put_archive(&d, &id, "/tmp", &trick);
    if code >= 500 {
        failures.push(format!("symlink trick: {code} {text}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        is_empty_dir(&outside),
        "the archive wrote outside the container"
    );
    // The container's /tmp holds nothing from the broken archives.
    let o = d.docker(&["cp", &format!("{id}:/tmp/big.bin"), "-"]);
    assert!(!o.status.success(), "a truncated archive left big.bin");
    // A good archive still works.
    let good = raw_tar(&[("ok.txt", tar::EntryType::Regular, b"fine", "")]);
    let (code, text) = put_archive(&d, &id, "/tmp", &good);
    assert_eq!(code, 200, "{text}");
    d.ok(&["rm", "-f", &id]);
    d.finish();
}
