//! Path resolution confined to a container rootfs (symlinks resolved against the rootfs, never
//! the host) and the pre-start executable lookup that gives Docker's 126/127 errors.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::error::Error;

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

/// Check, before starting, that `cmd` can be executed inside `rootfs` with `path_env` (the
/// container's PATH). Errors carry Docker's wording and exit code (127 missing, 126 not
/// executable). Returns the container-side path found.
pub fn find_executable(rootfs: &Path, cmd: &str, path_env: &str) -> Result<String, Error> {
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
            Ok(m) if m.permissions().mode() & 0o111 == 0 => {
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
    use std::os::unix::fs::symlink;

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
            find_executable(r, "sh", "/usr/bin:/bin").unwrap(),
            "/bin/sh"
        );
        let e = find_executable(r, "nosuchcmd", "/bin").unwrap_err();
        assert_eq!(e.exit_code(), 127);
        assert_eq!(
            e.to_string(),
            "exec: \"nosuchcmd\": executable file not found in $PATH"
        );
        assert_eq!(
            find_executable(r, "/bin/data", "/bin")
                .unwrap_err()
                .exit_code(),
            126
        );
        assert_eq!(
            find_executable(r, "/bin", "/bin").unwrap_err().exit_code(),
            126
        );
        assert_eq!(
            find_executable(r, "/nope", "/bin").unwrap_err().exit_code(),
            127
        );
        symlink("loop", r.join("loop")).unwrap();
        assert!(resolve_in_root(r, "/loop").is_none());
    }
}
