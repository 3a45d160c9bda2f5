//! Default daemon paths for whoever runs `berth`: root gets /var/lib/berth and
//! /run/berth/berth.sock; an ordinary user gets the rootless daemon's (berth-rootless's XDG
//! paths), for the daemon it starts and for the socket the CLI looks for.

use std::path::PathBuf;

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

/// The socket the CLI uses when nothing selects one: the rootless socket for an ordinary user
/// whose session has `XDG_RUNTIME_DIR`, else the system daemon's.
pub fn client_socket(rootless: bool, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match rootless {
        true => paths::socket(env).ok(),
        false => None,
    }
    .unwrap_or_else(|| PathBuf::from(berth_client::DEFAULT_SOCKET))
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
        assert_eq!(
            client_socket(true, &env),
            PathBuf::from("/run/user/7/berth/berth.sock")
        );
        assert_eq!(
            state_root(false, &env).unwrap(),
            PathBuf::from("/var/lib/berth")
        );
        assert_eq!(
            client_socket(false, &env),
            PathBuf::from(berth_client::DEFAULT_SOCKET)
        );
        // Without a runtime dir the CLI tries the system daemon (which may share its socket).
        assert_eq!(
            client_socket(true, &|k| (k == "HOME").then(|| "/h".into())),
            PathBuf::from(berth_client::DEFAULT_SOCKET)
        );
    }
}
