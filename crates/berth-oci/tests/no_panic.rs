//! Hostile input never panics the image vocabulary: references, digests, platforms, manifests,
//! indexes and image configs either parse or answer an error that says what was wrong.

use berth_oci::{Digest, ImageConfig, Index, Manifest, Platform, Reference};
use proptest::prelude::*;

const VALID_MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":32}]}"#;
const VALID_INDEX: &str = r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":7,"platform":{"architecture":"amd64","os":"linux"}}]}"#;
const VALID_CONFIG: &str = r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"],"ExposedPorts":{"80/tcp":{}},"Healthcheck":{"Test":["CMD","true"],"Interval":1000}},"rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},"history":[{"created_by":"x","empty_layer":true}]}"#;

/// A valid document with a few bytes overwritten, inserted or cut: near misses reach deeper
/// into the parsers than random bytes do.
fn mutated(doc: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<prop::sample::Index>(), any::<u8>(), 0u8..3);
    prop::collection::vec(edit, 0..6).prop_map(move |edits| {
        let mut b = doc.as_bytes().to_vec();
        for (at, byte, op) in edits {
            if b.is_empty() {
                break;
            }
            let i = at.index(b.len());
            match op {
                0 => b[i] = byte,
                1 => b.insert(i, byte),
                _ => b.truncate(i),
            }
        }
        b
    })
}

fn referenceish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-z0-9]{1,8}",
        Just("/".to_string()),
        Just(":".to_string()),
        Just("@".to_string()),
        Just("sha256:".to_string()),
        Just("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_string()),
        Just("localhost:5000".to_string()),
        Just("docker.io/library/".to_string()),
        "[._-]{1,3}",
        "[A-Zé\u{0}-\u{1f}]{1,2}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn references_parse_or_say_why(s in referenceish()) {
        match Reference::parse(&s) {
            Ok(r) => {
                // A parsed reference prints and reparses to itself.
                let full = r.full_name();
                let again = Reference::parse(&r.to_string());
                prop_assert!(again.is_ok(), "{s:?} parsed, but its rendering {r} does not");
                prop_assert_eq!(again.unwrap().full_name(), full);
                let _ = r.familiar_name();
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn digests_and_platforms_never_panic(s in referenceish()) {
        if let Ok(d) = s.parse::<Digest>() {
            prop_assert_eq!(d.to_string().parse::<Digest>().unwrap(), d.clone());
            let _ = (d.short(), d.hex(), d.algorithm());
        }
        if let Ok(p) = Platform::parse(&s) {
            prop_assert!(p.matches(&p));
        }
    }

    #[test]
    fn manifests_parse_or_say_why(b in mutated(VALID_MANIFEST)) {
        match Manifest::from_slice(&b) {
            Ok(m) => prop_assert_eq!(Manifest::from_slice(&m.to_vec()).unwrap(), m),
            Err(e) => prop_assert!(e.to_string().contains("manifest"), "{e}"),
        }
        let _ = berth_oci::sniff_media_type(&b);
    }

    #[test]
    fn indexes_parse_or_say_why(b in mutated(VALID_INDEX)) {
        match Index::from_slice(&b) {
            Ok(i) => {
                prop_assert_eq!(Index::from_slice(&i.to_vec()).unwrap(), i.clone());
                let _ = i.select(&Platform::host());
            }
            Err(e) => prop_assert!(e.to_string().contains("index"), "{e}"),
        }
    }

    #[test]
    fn configs_parse_or_fail_cleanly(b in mutated(VALID_CONFIG)) {
        if let Ok(c) = ImageConfig::from_slice(&b) {
            prop_assert_eq!(ImageConfig::from_slice(&c.to_vec()).unwrap().to_vec(), c.to_vec());
        }
    }

    #[test]
    fn random_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Manifest::from_slice(&b);
        let _ = Index::from_slice(&b);
        let _ = ImageConfig::from_slice(&b);
        let _ = berth_oci::sniff_media_type(&b);
    }
}

#[test]
fn the_seeds_are_valid() {
    Manifest::from_slice(VALID_MANIFEST.as_bytes()).unwrap();
    Index::from_slice(VALID_INDEX.as_bytes()).unwrap();
    ImageConfig::from_slice(VALID_CONFIG.as_bytes()).unwrap();
}
