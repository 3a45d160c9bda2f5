//! Default daemon paths for whoever runs `berth`: root gets /var/lib/berth and
//! /run/berth/berth.sock; an ordinary user gets the rootless daemon's (berth-rootless's XDG
//! paths), for the daemon it starts and for the socket the CLI looks for.

use std::path::{Path, PathBuf};

use berth_rootless::paths;

/// Whether this process runs as an ordinary user (or is the rootless daemon inside its
/// namespace), so the rootless defaults apply.
pub fn rootless() -> bool {
    !matches!(berth_rootless::stage(), berth_rootless::Stage::Root)
}

/// The state root of a daemon started without `--root`.
pub fn state_root(rootless: bool, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<PathBuf> {
    Ok(match rootless {
        true => paths::data_dir(env)?,
        false => PathBuf::from("/var/lib/berth"),
    })
}

/// The socket the CLI uses when nothing selects one: for an ordinary user whose session has
/// `XDG_RUNTIME_DIR`, the rootless daemon's socket, unless that is absent and the system
/// daemon's socket is open to the user (`--group`): then the system daemon, as before.
pub fn client_socket(
    rootless: bool,
    env: &dyn Fn(&str) -> Option<String>,
    usable: &dyn Fn(&Path) -> bool,
) -> PathBuf {
    let system = PathBuf::from(berth_client::DEFAULT_SOCKET);
    match rootless.then(|| paths::socket(env).ok()).flatten() {
        Some(own) if own.exists() || !usable(&system) => own,
        _ => system,
    }
}

/// The daemon the CLI talks to when no host or context names one ([`client_socket`] for this
/// process): the CLI's connection and the `default` context's endpoint.
pub fn client_host() -> berth_client::Host {
    berth_client::Host::Unix(client_socket(
        rootless(),
        &paths::process_env,
        &socket_usable,
    ))
}

/// Whether this process may connect to the unix socket at `p` (write permission).
pub fn socket_usable(p: &Path) -> bool {
    nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ordinary_user_gets_the_xdg_paths() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/a".to_string()),
            "XDG_RUNTIME_DIR" => Some("/run/user/7".to_string()),
            _ => None,
        };
        assert_eq!(
            state_root(true, &env).unwrap(),
            PathBuf::from("/home/a/.local/share/berth")
        );
        let no = |_: &Path| false;
        assert_eq!(
            client_socket(true, &env, &no),
            PathBuf::from("/run/user/7/berth/berth.sock")
        );
        assert_eq!(
            state_root(false, &env).unwrap(),
            PathBuf::from("/var/lib/berth")
        );
        let system = PathBuf::from(berth_client::DEFAULT_SOCKET);
        assert_eq!(client_socket(false, &env, &no), system);
        // A system daemon shared with the user (no rootless one running) stays the default.
        assert_eq!(client_socket(true, &env, &|_: &Path| true), system);
        // Without a runtime dir the CLI tries the system daemon.
        let home_only = |k: &str| (k == "HOME").then(|| "/h".to_string());
        assert_eq!(client_socket(true, &home_only, &no), system);
    }
}
