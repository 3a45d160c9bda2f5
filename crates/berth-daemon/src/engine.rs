//! The Engine, the daemon's composition root: it holds each service's state (containers,
//! images, networks, volumes, registry, events, config) and hands them to berth-api-types'
//! service traits, which each concern implements in its own folder (`containers/`, `images/`,
//! `networks.rs`, `volumes/`, `build/`, `registry/`, `system.rs`).

use std::sync::Arc;

use berth_api_types::Services;

use crate::config::{DaemonConfig, FileConfig};
use crate::error::Result;
use crate::events::EventBus;
use crate::images::store::ImageStore;

/// The engine behind the API. Cheap to clone (shared state behind `Arc`).
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Containers (records, shims, exec instances).
    pub containers: crate::containers::Containers,
    pub store: Arc<dyn ImageStore>,
    /// The concrete store, when the engine runs over berth-store (builder, rw layers).
    pub raw_store: Option<Arc<berth_store::Store>>,
    pub events: EventBus,
    pub cfg: DaemonConfig,
    pub file: FileConfig,
    /// Stable engine ID (persisted under the root).
    pub id: String,
    /// Volumes of the local driver under `<root>/volumes`.
    pub volumes: Arc<crate::volumes::VolumeStore>,
    /// Registry client and blob-source table (pull, push, login).
    pub registry: crate::registry::RegistryState,
    /// The network service's state (berth-network's manager).
    pub networks: crate::networks::NetworkState,
    /// The HTTP client port (registry and `ADD <url>` traffic); the binary injects it.
    pub http: Arc<dyn berth_http::Connector>,
}

impl Engine {
    /// Build an engine over berth-store, keeping the concrete handle for the builder and
    /// container rw layers; its HTTP traffic goes through `http`.
    pub fn with_store(
        store: Arc<berth_store::Store>,
        cfg: DaemonConfig,
        file: FileConfig,
        http: Arc<dyn berth_http::Connector>,
    ) -> crate::error::Result<Engine> {
        let port: Arc<dyn ImageStore> =
            Arc::new(crate::images::store_adapter::StoreAdapter(store.clone()));
        Engine::build(port, Some(store), cfg, file, http)
    }

    fn build(
        store: Arc<dyn ImageStore>,
        raw_store: Option<Arc<berth_store::Store>>,
        cfg: DaemonConfig,
        file: FileConfig,
        http: Arc<dyn berth_http::Connector>,
    ) -> crate::error::Result<Engine> {
        let id = match &file.deprecated_key_path {
            Some(p) => libtrust_key_id(p)?,
            None => engine_id(&cfg.root),
        };
        let volumes = Arc::new(crate::volumes::service::open_volumes(
            &cfg.root,
            &cfg.ids(),
        )?);
        let registry = crate::registry::RegistryState::new(&cfg, &file, http.clone());
        let containers = crate::containers::Containers::open(&cfg.root);
        // Volume references live in memory: every stored container holds its volumes again,
        // so a restart never makes a used volume removable.
        for c in crate::containers::lock(&containers.map).values() {
            let r = c.snapshot();
            for m in &r.mount_points {
                if let (Some("volume"), Some(name)) = (m.typ.as_deref(), m.name.as_deref()) {
                    volumes.restore(name, &r.id);
                }
            }
        }
        Ok(Engine {
            inner: Arc::new(Inner {
                containers,
                store,
                raw_store,
                events: EventBus::new(),
                cfg,
                file,
                id,
                volumes,
                registry,
                networks: Default::default(),
                http,
            }),
        })
    }

    /// The API services backed by this engine.
    pub fn services(&self) -> Services {
        Services {
            images: Arc::new(self.clone()),
            system: Arc::new(self.clone()),
            volumes: Arc::new(self.clone()),
            container_fs: crate::containers::archive::service_for(self),
            containers: Arc::new(self.clone()),
            networks: Arc::new(self.clone()),
        }
    }

    /// The concrete berth-store, when the engine runs over it.
    pub fn store(&self) -> Option<&Arc<berth_store::Store>> {
        self.inner.raw_store.as_ref()
    }

    pub fn config(&self) -> &DaemonConfig {
        &self.inner.cfg
    }

    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    /// Run a synchronous store call on the blocking pool.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn ImageStore) -> Result<T> + Send + 'static,
    {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref())).await?
    }

    /// The container using an image, if any (no containers yet: always None).
    pub(crate) fn container_using(&self, image_id: &berth_oci::Digest) -> Option<String> {
        self.inner.containers.using_image(&image_id.to_string())
    }
}

/// The key ID of a libtrust key file (dockerd's engine ID before 23.0): its JWK `kid`, which
/// libtrust writes as twelve colon-separated groups of four base32 characters.
fn libtrust_key_id(path: &std::path::Path) -> crate::error::Result<String> {
    let bad = |why: String| {
        crate::error::DaemonError::Invalid(format!("deprecated-key-path {}: {why}", path.display()))
    };
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let jwk: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("not a JSON web key: {e}")))?;
    let kid = jwk["kid"].as_str().unwrap_or_default();
    let groups: Vec<&str> = kid.split(':').collect();
    let base32 =
        |g: &&str| g.len() == 4 && g.bytes().all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7'));
    if groups.len() != 12 || !groups.iter().all(base32) {
        return Err(bad(format!("key ID {kid:?} is not a libtrust key ID")));
    }
    Ok(kid.to_string())
}

/// Read `<root>/engine-id`, creating it on first start. Falls back to an in-memory ID.
fn engine_id(root: &std::path::Path) -> String {
    let p = root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&p) {
        let s = s.trim().to_string();
        if !s.is_empty() {
            return s;
        }
    }
    let seed = format!(
        "{:?}{}{}",
        std::time::SystemTime::now(),
        std::process::id(),
        root.display()
    );
    let id = berth_oci::Digest::of(seed.as_bytes()).hex()[..32].to_string();
    if let Err(e) = std::fs::write(&p, &id) {
        tracing::warn!(path = %p.display(), error = %e, "cannot persist engine id");
    }
    id
}

#[cfg(test)]
mod tests {
    #[test]
    fn engine_id_from_a_libtrust_key_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("key.json");
        let kid = "WTJ3:YSIP:CE2E:G6KJ:PSBD:YX2Y:WEYD:M64G:NU2V:XPZV:H2CR:VLUB";
        std::fs::write(&p, format!(r#"{{"crv":"P-256","kid":"{kid}","kty":"EC"}}"#)).unwrap();
        assert_eq!(super::libtrust_key_id(&p).unwrap(), kid);
        std::fs::write(&p, r#"{"kid":"nope"}"#).unwrap();
        let e = super::libtrust_key_id(&p).unwrap_err().to_string();
        assert!(e.contains("not a libtrust key ID"), "{e}");
        let e = super::libtrust_key_id(&d.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("deprecated-key-path"), "{e}");
    }
}
