//! The container record's own on-disk types: the create request's config, host config and
//! networking as berth stores them in `config.v2.json`, with Docker's JSON field names, apart
//! from the API models (bollard's), so a bollard upgrade cannot change or break what is stored.
//!
//! Types and fields are named as the API models they mirror, so code reads the same on both
//! sides of the edge; the edges convert with `From` (create and update take the API's types
//! in; inspect, list and commit hand the API's types out). Each stored type is declared once
//! with `stored_struct!` / `stored_enum!`, which also write both conversions: the one
//! towards the API model names every field, so a field bollard adds or renames is a compile
//! error here, to be decided on, never a silent change of the stored format.

use std::collections::HashMap;

pub use config::{ContainerConfig, HealthConfig};
pub use host::{
    DeviceMapping, DeviceRequest, HostConfig, HostConfigCgroupnsModeEnum, HostConfigIsolationEnum,
    HostConfigLogConfig, PortBinding, PortMap, ResourcesBlkioWeightDevice, ResourcesUlimits,
    RestartPolicy, RestartPolicyNameEnum, ThrottleDevice,
};
pub use mount::{
    Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountImageOptions, MountPoint,
    MountTmpfsOptions, MountType, MountVolumeOptions, MountVolumeOptionsDriverConfig,
};
pub use network::{EndpointIpamConfig, EndpointSettings, NetworkingConfig};

/// A value converted field by field between a stored type and its API model (both ways).
/// `Option`, `Vec` and string-keyed maps convert element-wise; plain values are themselves.
pub trait Mirror<T> {
    fn mirror(self) -> T;
}

macro_rules! mirror_as_is {
    ($($t:ty),*) => { $( impl Mirror<$t> for $t { fn mirror(self) -> $t { self } } )* };
}
mirror_as_is!(String, bool, i64, u16, usize);

impl<A: Mirror<B>, B> Mirror<Option<B>> for Option<A> {
    fn mirror(self) -> Option<B> {
        self.map(Mirror::mirror)
    }
}

impl<A: Mirror<B>, B> Mirror<Vec<B>> for Vec<A> {
    fn mirror(self) -> Vec<B> {
        self.into_iter().map(Mirror::mirror).collect()
    }
}

impl<A: Mirror<B>, B> Mirror<HashMap<String, B>> for HashMap<String, A> {
    fn mirror(self) -> HashMap<String, B> {
        self.into_iter().map(|(k, v)| (k, v.mirror())).collect()
    }
}

/// A stored struct: every field optional and absent from the JSON when `None` (as Docker's
/// models), missing keys default, unknown keys are ignored; plus `From` both ways with the
/// API model `api::$api` of the same field names.
macro_rules! stored_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident <=> api::$api:ident {
            $( $(#[$fmeta:meta])* $json:literal $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(rename = $json, default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }

        impl From<api::$api> for $name {
            fn from(a: api::$api) -> Self {
                Self { $( $field: $crate::containers::stored::Mirror::mirror(a.$field), )* }
            }
        }

        impl From<$name> for api::$api {
            fn from(s: $name) -> Self {
                Self { $( $field: $crate::containers::stored::Mirror::mirror(s.$field), )* }
            }
        }

        impl $crate::containers::stored::Mirror<api::$api> for $name {
            fn mirror(self) -> api::$api {
                self.into()
            }
        }

        impl $crate::containers::stored::Mirror<$name> for api::$api {
            fn mirror(self) -> $name {
                self.into()
            }
        }
    };
}

/// A stored enum of Docker's words (`"on-failure"`, `"rprivate"`…), with `From` both ways
/// with the API model `api::$api` of the same variant names (matched exhaustively).
macro_rules! stored_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident <=> api::$api:ident { $( $json:literal $v:ident, )* }
    ) => {
        $(#[$meta])*
        #[allow(non_camel_case_types)]
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $( #[serde(rename = $json)] $v, )*
        }

        impl $name {
            /// The word Docker uses.
            pub fn as_str(self) -> &'static str {
                match self { $( Self::$v => $json, )* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<api::$api> for $name {
            fn from(a: api::$api) -> Self {
                match a { $( api::$api::$v => Self::$v, )* }
            }
        }

        impl From<$name> for api::$api {
            fn from(s: $name) -> Self {
                match s { $( $name::$v => Self::$v, )* }
            }
        }

        impl $crate::containers::stored::Mirror<api::$api> for $name {
            fn mirror(self) -> api::$api {
                self.into()
            }
        }

        impl $crate::containers::stored::Mirror<$name> for api::$api {
            fn mirror(self) -> $name {
                self.into()
            }
        }
    };
}

mod config;
mod host;
mod mount;
mod network;
#[cfg(test)]
mod tests;

/// `{"80/tcp": {}, "443/tcp": {}}` (Docker's set of `ExposedPorts` / `Volumes`) as a list in
/// the order written; `null` reads as an empty set, as bollard reads it.
pub(crate) mod key_set {
    use serde::de::{IgnoredAny, MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<String>>, s: S) -> Result<S::Ok, S::Error> {
        let keys = v.as_deref().unwrap_or_default();
        let mut m = s.serialize_map(Some(keys.len()))?;
        for k in keys {
            m.serialize_entry(k, &serde_json::Map::new())?;
        }
        m.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = Option<Vec<String>>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of keys to {} or null")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Some(Vec::new()))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Some(Vec::new()))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(Keys)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, IgnoredAny)) = m.next_entry::<String, IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(Some(keys))
            }
        }
        d.deserialize_option(Keys)
    }
}
