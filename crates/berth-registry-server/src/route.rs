//! The distribution API's paths: `/v2/<name>/{manifests,blobs,tags,referrers}/…` parsed into
//! a typed route, with repository names, tags and digests checked against the spec's grammar
//! (so no path component can leave the store's directories).

use berth_oci::Digest;

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

/// What a request path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`: the API version check.
    Base,
    Catalog,
    Manifest {
        name: String,
        reference: Reference,
    },
    Blob {
        name: String,
        digest: Digest,
    },
    /// `/v2/<name>/blobs/uploads/`: start an upload.
    UploadStart {
        name: String,
    },
    /// `/v2/<name>/blobs/uploads/<id>`.
    Upload {
        name: String,
        id: String,
    },
    Tags {
        name: String,
    },
    Referrers {
        name: String,
        digest: Digest,
    },
}

/// Why a path is not a route; the distribution error code it answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// Not an API path at all (404 without a code).
    NotFound,
    NameInvalid(String),
    TagInvalid(String),
    DigestInvalid(String),
}

/// One path component of a repository name: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_lowercase() && !b[0].is_ascii_digit() {
        return false;
    }
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: `.`, `_`, `__`, or one or more `-`, between alphanumerics.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i >= b.len() || !alnum(b[i]) || start == 0 {
            return false;
        }
    }
    true
}

/// A repository name (`library/busybox`): components joined by `/`, at most 255 characters.
pub fn name_ok(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(component_ok)
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn tag_ok(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn digest(s: &str) -> Result<Digest, RouteError> {
    s.parse::<Digest>()
        .map_err(|_| RouteError::DigestInvalid(s.to_string()))
}

fn name(s: &str) -> Result<String, RouteError> {
    if name_ok(s) {
        Ok(s.to_string())
    } else {
        Err(RouteError::NameInvalid(s.to_string()))
    }
}

/// Parse a request path (without the query).
pub fn parse(path: &str) -> Result<Route, RouteError> {
    let Some(rest) = path.strip_prefix("/v2/") else {
        return if path == "/v2" {
            Ok(Route::Base)
        } else {
            Err(RouteError::NotFound)
        };
    };
    if rest.is_empty() {
        return Ok(Route::Base);
    }
    if rest == "_catalog" {
        return Ok(Route::Catalog);
    }
    // The name is everything before the last `/manifests/`, `/blobs/`, `/tags/` or
    // `/referrers/` (a name may itself hold slashes, never these words as a component
    // followed by the right shape).
    if let Some(n) = rest.strip_suffix("/tags/list") {
        return Ok(Route::Tags { name: name(n)? });
    }
    if let Some(i) = rest.rfind("/blobs/uploads/") {
        let n = name(&rest[..i])?;
        let id = &rest[i + "/blobs/uploads/".len()..];
        if id.is_empty() {
            return Ok(Route::UploadStart { name: n });
        }
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(RouteError::NotFound);
        }
        return Ok(Route::Upload {
            name: n,
            id: id.to_string(),
        });
    }
    if let Some(n) = rest.strip_suffix("/blobs/uploads") {
        return Ok(Route::UploadStart { name: name(n)? });
    }
    for (word, kind) in [("/manifests/", 0), ("/blobs/", 1), ("/referrers/", 2)] {
        if let Some(i) = rest.rfind(word) {
            let n = name(&rest[..i])?;
            let tail = &rest[i + word.len()..];
            return match kind {
                0 => {
                    let reference = if tail.contains(':') {
                        Reference::Digest(digest(tail)?)
                    } else if tag_ok(tail) {
                        Reference::Tag(tail.to_string())
                    } else {
                        return Err(RouteError::TagInvalid(tail.to_string()));
                    };
                    Ok(Route::Manifest { name: n, reference })
                }
                1 => Ok(Route::Blob {
                    name: n,
                    digest: digest(tail)?,
                }),
                _ => Ok(Route::Referrers {
                    name: n,
                    digest: digest(tail)?,
                }),
            };
        }
    }
    Err(RouteError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    #[test]
    fn names_follow_the_spec_grammar() {
        for ok in ["a", "library/busybox", "a.b_c__d-e--f/g0", "x/y/z"] {
            assert!(name_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "..",
            "a/../b",
            "a/.b",
            "a_",
            "-a",
            "a___b",
            "a/b c",
            &"a".repeat(256),
        ] {
            assert!(!name_ok(bad), "{bad}");
        }
        assert!(tag_ok("v1.0-rc_1") && tag_ok("_x") && !tag_ok(".x") && !tag_ok(&"a".repeat(129)));
    }

    #[test]
    fn paths_become_routes() {
        assert_eq!(parse("/v2/"), Ok(Route::Base));
        assert_eq!(parse("/v2/_catalog"), Ok(Route::Catalog));
        assert_eq!(
            parse("/v2/library/busybox/manifests/latest"),
            Ok(Route::Manifest {
                name: "library/busybox".into(),
                reference: Reference::Tag("latest".into())
            })
        );
        assert_eq!(
            parse(&format!("/v2/a/b/blobs/{D}")),
            Ok(Route::Blob {
                name: "a/b".into(),
                digest: D.parse().unwrap()
            })
        );
        assert_eq!(
            parse("/v2/a/blobs/uploads/"),
            Ok(Route::UploadStart { name: "a".into() })
        );
        assert_eq!(
            parse("/v2/a/blobs/uploads/0f-1a"),
            Ok(Route::Upload {
                name: "a".into(),
                id: "0f-1a".into()
            })
        );
        assert_eq!(
            parse("/v2/a/tags/list"),
            Ok(Route::Tags { name: "a".into() })
        );
        // A repository may be named like an API word.
        assert_eq!(
            parse("/v2/manifests/manifests/v1"),
            Ok(Route::Manifest {
                name: "manifests".into(),
                reference: Reference::Tag("v1".into())
            })
        );
    }

    #[test]
    fn hostile_paths_are_refused() {
        assert_eq!(
            parse("/v2/../etc/manifests/x"),
            Err(RouteError::NameInvalid("../etc".into()))
        );
        assert_eq!(
            parse("/v2/a/manifests/..%2f"),
            Err(RouteError::TagInvalid("..%2f".into()))
        );
        assert_eq!(
            parse("/v2/a/blobs/sha256:../../x"),
            Err(RouteError::DigestInvalid("sha256:../../x".into()))
        );
        assert_eq!(parse("/v2/a/blobs/uploads/../x"), Err(RouteError::NotFound));
        assert_eq!(parse("/other"), Err(RouteError::NotFound));
    }
}
