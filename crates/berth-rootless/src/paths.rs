//! Where a rootless daemon keeps things (as rootless dockerd and podman): state in
//! `$XDG_DATA_HOME/berth` (default `~/.local/share/berth`), socket and runtime state in
//! `$XDG_RUNTIME_DIR/berth`, daemon.json in `$XDG_CONFIG_HOME/berth`. Pure over an
//! environment lookup.

use std::path::PathBuf;

use crate::RootlessError;

/// An absolute, non-empty value of `var` (XDG says relative values are to be ignored).
fn abs(env: &dyn Fn(&str) -> Option<String>, var: &str) -> Option<PathBuf> {
    env(var).map(PathBuf::from).filter(|p| p.is_absolute())
}

fn home(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, RootlessError> {
    abs(env, "HOME").ok_or(RootlessError::NoHome)
}

/// Persistent state: `$XDG_DATA_HOME/berth`, else `$HOME/.local/share/berth`.
pub fn data_dir(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, RootlessError> {
    Ok(match abs(env, "XDG_DATA_HOME") {
        Some(d) => d,
        None => home(env)?.join(".local/share"),
    }
    .join("berth"))
}

/// `daemon.json`: `$XDG_CONFIG_HOME/berth/daemon.json`, else `$HOME/.config/berth/daemon.json`.
pub fn config_file(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, RootlessError> {
    Ok(match abs(env, "XDG_CONFIG_HOME") {
        Some(d) => d,
        None => home(env)?.join(".config"),
    }
    .join("berth/daemon.json"))
}

/// Runtime state and the socket's directory: `$XDG_RUNTIME_DIR/berth` (no fallback: a
/// world-writable /tmp is no place for a daemon's socket).
pub fn runtime_dir(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, RootlessError> {
    abs(env, "XDG_RUNTIME_DIR")
        .map(|d| d.join("berth"))
        .ok_or(RootlessError::NoRuntimeDir)
}

/// The rootless daemon's API socket: `$XDG_RUNTIME_DIR/berth/berth.sock`.
pub fn socket(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, RootlessError> {
    Ok(runtime_dir(env)?.join("berth.sock"))
}

/// The process environment as a lookup for the functions above.
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn xdg_dirs_win_then_home() {
        let e = env(&[("HOME", "/home/a"), ("XDG_RUNTIME_DIR", "/run/user/7")]);
        assert_eq!(
            data_dir(&e).unwrap(),
            PathBuf::from("/home/a/.local/share/berth")
        );
        assert_eq!(
            config_file(&e).unwrap(),
            PathBuf::from("/home/a/.config/berth/daemon.json")
        );
        assert_eq!(
            socket(&e).unwrap(),
            PathBuf::from("/run/user/7/berth/berth.sock")
        );
        let e = env(&[
            ("HOME", "/home/a"),
            ("XDG_DATA_HOME", "/d"),
            ("XDG_CONFIG_HOME", "/c"),
        ]);
        assert_eq!(data_dir(&e).unwrap(), PathBuf::from("/d/berth"));
        assert_eq!(
            config_file(&e).unwrap(),
            PathBuf::from("/c/berth/daemon.json")
        );
    }

    #[test]
    fn missing_or_relative_dirs_are_refused_by_name() {
        let e = env(&[
            ("HOME", "/home/a"),
            ("XDG_RUNTIME_DIR", "run"),
            ("XDG_DATA_HOME", ""),
        ]);
        let err = runtime_dir(&e).unwrap_err().to_string();
        assert!(err.contains("XDG_RUNTIME_DIR"), "{err}");
        assert_eq!(
            data_dir(&e).unwrap(),
            PathBuf::from("/home/a/.local/share/berth")
        );
        let none = env(&[]);
        assert!(data_dir(&none).unwrap_err().to_string().contains("HOME"));
    }
}
