//! Path resolution confined to a container rootfs (symlinks resolved against the rootfs, never
//! the host) and the pre-start executable lookup that gives Docker's 126/127 errors.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::error::Error;
use crate::user::User;

const MAX_SYMLINKS: u32 = 40;

/// Resolve `path` (absolute, as seen inside the container) to a host path below `root`,
/// following symlinks as the container would see them. `..` never climbs above `root`.
/// Returns None when a symlink loop is detected. The final component need not exist.
pub fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = Path::new(path)
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            parts.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(parts.iter());
        candidate.push(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return None;
                }
                let target = std::fs::read_link(&candidate).ok()?;
                if target.is_absolute() {
                    parts.clear();
                }
                for t in target.components().rev() {
                    match t {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => parts.push(c),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(parts.iter());
    Some(out)
}

fn exec_err(message: String, exit_code: i32) -> Error {
    Error::Exec { message, exit_code }
}

/// Whether `user` may execute a file with this `mode`, `owner` and `group`, as the kernel
/// decides: the owner's bits for the owner, else the group's for a member (primary or
/// additional gid), else the others'; root (CAP_DAC_OVERRIDE) needs any x bit.
pub fn may_execute(mode: u32, owner: u32, group: u32, user: &User) -> bool {
    if user.uid == 0 {
        mode & 0o111 != 0
    } else if user.uid == owner {
        mode & 0o100 != 0
    } else if user.gid == group || user.additional_gids.contains(&group) {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// Check, before starting, that `user` can execute `cmd` inside `rootfs` with `path_env` (the
/// container's PATH). Errors carry Docker's wording and exit code (127 missing, 126 not
/// executable). Returns the container-side path found.
pub fn find_executable(
    rootfs: &Path,
    cmd: &str,
    path_env: &str,
    user: &User,
) -> Result<String, Error> {
    let check = |inside: &str| -> Result<Option<String>, Error> {
        let Some(host) = resolve_in_root(rootfs, inside) else {
            return Err(exec_err(
                format!("exec: \"{cmd}\": too many levels of symbolic links"),
                126,
            ));
        };
        match std::fs::metadata(&host) {
            Err(_) => Ok(None),
            Ok(m) if m.is_dir() => Err(exec_err(format!("exec: \"{cmd}\": is a directory"), 126)),
            Ok(m) if !may_execute(m.mode(), m.uid(), m.gid(), user) => {
                Err(exec_err(format!("exec: \"{cmd}\": permission denied"), 126))
            }
            Ok(_) => Ok(Some(inside.to_string())),
        }
    };
    if cmd.contains('/') {
        let inside = if cmd.starts_with('/') {
            cmd.to_string()
        } else {
            format!("/{cmd}")
        };
        return check(&inside)?.ok_or_else(|| {
            exec_err(
                format!("exec: \"{cmd}\": stat {cmd}: no such file or directory"),
                127,
            )
        });
    }
    for dir in path_env.split(':').filter(|d| !d.is_empty()) {
        let inside = format!("{}/{cmd}", dir.trim_end_matches('/'));
        match check(&inside) {
            Ok(Some(p)) => return Ok(p),
            Ok(None) => continue,
            // Like Go's LookPath: a non-executable match is skipped, keep looking.
            Err(_) => continue,
        }
    }
    Err(exec_err(
        format!("exec: \"{cmd}\": executable file not found in $PATH"),
        127,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn root() -> User {
        User::default()
    }

    fn user(uid: u32, gid: u32, groups: &[u32]) -> User {
        User {
            uid,
            gid,
            additional_gids: groups.to_vec(),
            home: None,
        }
    }

    #[test]
    fn execute_access_follows_owner_group_other() {
        // 0750 root:root (a `COPY --chmod=0750` entrypoint).
        assert!(may_execute(0o750, 0, 0, &root()));
        assert!(!may_execute(0o750, 0, 0, &user(1000, 1000, &[])));
        assert!(may_execute(0o750, 0, 0, &user(1000, 0, &[])));
        assert!(may_execute(0o750, 0, 50, &user(1000, 1000, &[50])));
        // Owner bits decide for the owner, even when group or others could.
        assert!(!may_execute(0o071, 1000, 1000, &user(1000, 1000, &[])));
        assert!(may_execute(0o700, 1000, 0, &user(1000, 1000, &[])));
        assert!(may_execute(0o701, 0, 0, &user(1000, 1000, &[])));
        // Root needs some x bit.
        assert!(may_execute(0o100, 1000, 1000, &root()));
        assert!(!may_execute(0o666, 0, 0, &root()));
    }

    #[test]
    fn owner_only_script_is_found_for_root_and_refused_for_others() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::write(r.join("entry.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(r.join("entry.sh"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        let (uid, gid) = {
            let m = std::fs::metadata(r.join("entry.sh")).unwrap();
            (m.uid(), m.gid())
        };
        let owner = user(uid, gid, &[]);
        assert_eq!(
            find_executable(r, "/entry.sh", "/bin", &owner).unwrap(),
            "/entry.sh"
        );
        let stranger = user(uid + 4242, gid + 4242, &[]);
        let e = find_executable(r, "/entry.sh", "/bin", &stranger).unwrap_err();
        assert_eq!(e.exit_code(), 126);
        assert_eq!(e.to_string(), "exec: \"/entry.sh\": permission denied");
    }

    #[test]
    fn symlinks_stay_inside_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::write(r.join("bin/busybox"), "x").unwrap();
        std::fs::set_permissions(
            r.join("bin/busybox"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        symlink("/bin/busybox", r.join("bin/sh")).unwrap();
        symlink("../../../../etc", r.join("escape")).unwrap();
        std::fs::write(r.join("bin/data"), "x").unwrap();
        assert_eq!(
            resolve_in_root(r, "/bin/sh").unwrap(),
            r.join("bin/busybox")
        );
        assert_eq!(
            resolve_in_root(r, "/escape/passwd").unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(
            find_executable(r, "sh", "/usr/bin:/bin", &root()).unwrap(),
            "/bin/sh"
        );
        let e = find_executable(r, "nosuchcmd", "/bin", &root()).unwrap_err();
        assert_eq!(e.exit_code(), 127);
        assert_eq!(
            e.to_string(),
            "exec: \"nosuchcmd\": executable file not found in $PATH"
        );
        assert_eq!(
            find_executable(r, "/bin/data", "/bin", &root())
                .unwrap_err()
                .exit_code(),
            126
        );
        assert_eq!(
            find_executable(r, "/bin", "/bin", &root())
                .unwrap_err()
                .exit_code(),
            126
        );
        assert_eq!(
            find_executable(r, "/nope", "/bin", &root())
                .unwrap_err()
                .exit_code(),
            127
        );
        symlink("loop", r.join("loop")).unwrap();
        assert!(resolve_in_root(r, "/loop").is_none());
    }
}
