//! Where the dashboard may be served: loopback, or any address with TLS.

use std::net::SocketAddr;

/// Why the dashboard cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error(
        "cannot serve the dashboard: this berth binary was built without its assets; {}",
        crate::assets::BUILD_HINT
    )]
    NotBuilt,
    #[error(
        "refusing to serve the dashboard on {addr} without TLS: anyone who can reach it could try to log in over plain HTTP; \
         use a loopback address (--ui 127.0.0.1:PORT) or give the daemon a certificate (--tls --tlscert FILE --tlskey FILE)"
    )]
    NotLoopback { addr: SocketAddr },
}

/// May the dashboard be served on `addr`? Loopback always; another address only with TLS.
/// The assets must be in the binary either way.
pub fn check_addr(addr: SocketAddr, tls: bool) -> Result<(), UiError> {
    if !crate::assets::built() {
        return Err(UiError::NotBuilt);
    }
    if addr.ip().is_loopback() || tls {
        return Ok(());
    }
    Err(UiError::NotLoopback { addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_needs_tls() {
        if !crate::assets::built() {
            let e = check_addr("127.0.0.1:1".parse().unwrap(), false).unwrap_err();
            assert!(e.to_string().contains("scripts/ui-build.sh"), "{e}");
            return;
        }
        assert!(check_addr("127.0.0.1:8080".parse().unwrap(), false).is_ok());
        assert!(check_addr("[::1]:8080".parse().unwrap(), false).is_ok());
        let e = check_addr("0.0.0.0:8080".parse().unwrap(), false).unwrap_err();
        assert!(e.to_string().contains("without TLS"), "{e}");
        assert!(check_addr("0.0.0.0:8080".parse().unwrap(), true).is_ok());
    }
}
