//! The crate's one error enum, its kinds, and the decoding of registry error bodies.

use std::path::PathBuf;

use berth_oci::Digest;

pub use berth_errors::ErrorKind;

/// Errors of the distribution client. Every message names the image or registry involved.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// `MANIFEST_UNKNOWN`: the tag or digest is not in the repository.
    #[error("manifest for {image} not found: {cause}")]
    ManifestUnknown { image: String, cause: String },
    /// `NAME_UNKNOWN`: the repository does not exist.
    #[error("repository {image} not found: {cause}")]
    RepositoryUnknown { image: String, cause: String },
    /// `DENIED` (or 401 while anonymous): Docker's famous wording.
    #[error(
        "pull access denied for {image}, repository does not exist or may require 'docker login': {cause}"
    )]
    AccessDenied { image: String, cause: String },
    /// A blob the manifest references is missing on the registry.
    #[error("blob {digest} of {image} not found on {registry}: {cause}")]
    BlobUnknown {
        image: String,
        registry: String,
        digest: Digest,
        cause: String,
    },
    /// No manifest in the index fits the wanted platform.
    #[error("no matching manifest for {platform} in the manifest list entries of {image}")]
    NoMatchingPlatform { image: String, platform: String },
    /// Credentials were refused.
    #[error("unauthorized: {detail} (registry {registry}); check the credentials or run 'docker login {registry}'")]
    Unauthorized { registry: String, detail: String },
    /// A manifest, index or token response that can't be used.
    #[error("malformed {what} for {image} from {registry}: {detail}")]
    Malformed {
        what: &'static str,
        image: String,
        registry: String,
        detail: String,
    },
    /// Content whose digest isn't what was asked for; nothing was stored.
    #[error("digest mismatch for {what} of {image} from {registry}: expected {expected}, got {actual}; nothing was stored, retry the pull")]
    DigestMismatch {
        what: String,
        image: String,
        registry: String,
        expected: Digest,
        actual: String,
    },
    /// A manifest larger than the 4 MiB limit.
    #[error("manifest for {image} from {registry} is larger than the 4 MiB limit ({size} bytes)")]
    ManifestTooLarge {
        image: String,
        registry: String,
        size: u64,
    },
    /// Invalid caller input (bad reference, platform, config).
    #[error("invalid {what}: {detail}")]
    InvalidInput { what: &'static str, detail: String },
    /// The registry did not answer in time.
    #[error("timed out talking to {registry} ({what}); check the network or raise the timeout")]
    Timeout { registry: String, what: String },
    /// Connection failures, 5xx after retries, TLS errors.
    #[error("registry {registry} is unavailable ({what}): {detail}")]
    Unavailable {
        registry: String,
        what: String,
        detail: String,
    },
    /// An HTTP status we did not expect.
    #[error("unexpected HTTP {status} from {registry} ({what}): {detail}")]
    UnexpectedStatus {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },
    /// The registry has no v1 search endpoint (distribution registries have none).
    #[error("registry {registry} does not support search: GET /v1/search answered HTTP {status} (only registries with the v1 search API, such as Docker Hub, can be searched)")]
    SearchUnsupported { registry: String, status: u16 },
    /// Writing to / reading from the local blob target failed.
    #[error("local blob {digest}: {source}")]
    Blob {
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
    /// A TLS / certificate configuration file could not be used.
    #[error("certificate {path}: {detail}; fix or remove the file")]
    Certificate { path: PathBuf, detail: String },
    /// Reading a docker config.json or running a credential helper failed.
    #[error("credentials for {registry}: {detail}")]
    Credentials { registry: String, detail: String },
}

impl RegistryError {
    /// The kind of failure, for the API to map to a status code.
    pub fn kind(&self) -> ErrorKind {
        use RegistryError::*;
        match self {
            ManifestUnknown { .. }
            | RepositoryUnknown { .. }
            | AccessDenied { .. }
            | BlobUnknown { .. }
            | NoMatchingPlatform { .. } => ErrorKind::NotFound,
            Unauthorized { .. } => ErrorKind::Unauthorized,
            Malformed { .. }
            | DigestMismatch { .. }
            | ManifestTooLarge { .. }
            | InvalidInput { .. } => ErrorKind::Invalid,
            Timeout { .. } | Unavailable { .. } => ErrorKind::Unavailable,
            UnexpectedStatus { status, .. } if *status >= 500 => ErrorKind::Unavailable,
            UnexpectedStatus { .. } => ErrorKind::Internal,
            SearchUnsupported { .. } => ErrorKind::NotImplemented,
            Blob { .. } | Certificate { .. } | Credentials { .. } => ErrorKind::Internal,
        }
    }

    /// Worth another attempt (connection trouble, 5xx, 429, timeouts).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            RegistryError::Timeout { .. } | RegistryError::Unavailable { .. } => true,
            RegistryError::UnexpectedStatus { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// One entry of a registry's `{"errors":[{"code","message","detail"}]}` body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ApiError {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

impl ApiError {
    /// As Docker prints an errcode: `manifest unknown: manifest unknown`.
    pub fn describe(&self) -> String {
        let code = self.code.to_ascii_lowercase().replace('_', " ");
        if self.message.is_empty() {
            code
        } else {
            format!("{code}: {}", self.message)
        }
    }
}

/// Decode the registry's error body; empty when it is not one.
pub fn parse_api_errors(body: &[u8]) -> Vec<ApiError> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<ApiError>,
    }
    serde_json::from_slice::<Body>(body)
        .map(|b| b.errors)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_errcodes() {
        let e = parse_api_errors(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].describe(), "manifest unknown: manifest unknown");
        assert!(parse_api_errors(b"<html>").is_empty());
    }

    #[test]
    fn kinds() {
        let e = RegistryError::AccessDenied {
            image: "foo".into(),
            cause: "denied: requested access to the resource is denied".into(),
        };
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.to_string(), "pull access denied for foo, repository does not exist or may require 'docker login': denied: requested access to the resource is denied");
        let t = RegistryError::UnexpectedStatus {
            registry: "r".into(),
            what: "x".into(),
            status: 503,
            detail: String::new(),
        };
        assert!(t.is_transient());
        assert_eq!(t.kind(), ErrorKind::Unavailable);
    }
}
