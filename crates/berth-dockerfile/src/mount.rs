//! `RUN --mount=...` specs: types and the CSV option parser.

/// Kind of a `RUN --mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// A parsed `RUN --mount=type=...,target=...` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountType,
    pub target: Option<String>,
    pub source: Option<String>,
    /// `from=<stage|image>`: the mount's source is another stage or image.
    pub from: Option<String>,
    pub readonly: bool,
    pub id: Option<String>,
    /// Cache sharing: `shared` (default), `private`, `locked`.
    pub sharing: Option<String>,
    pub mode: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub required: bool,
    pub size: Option<String>,
    /// Secret exposed as an environment variable instead of a file.
    pub env: Option<String>,
}

impl Mount {
    /// The secret a `type=secret` mount reads, as BuildKit picks it: `source=`, else `id=`,
    /// else the target's base name (None: neither, which BuildKit refuses).
    pub fn secret_id(&self) -> Option<String> {
        let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        set(&self.source).or_else(|| set(&self.id)).or_else(|| {
            set(&self.target).and_then(|t| {
                t.trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .filter(|b| !b.is_empty())
                    .map(str::to_string)
            })
        })
    }

    /// The SSH agent a `type=ssh` mount forwards: `id=`, else `default`.
    pub fn ssh_id(&self) -> String {
        self.id
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".to_string())
    }
}

/// Parse a `--mount` value (`type=cache,target=/x,sharing=locked`).
pub fn parse_mount(spec: &str) -> std::result::Result<Mount, String> {
    let mut m = Mount {
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        readonly: true,
        id: None,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        required: false,
        size: None,
        env: None,
    };
    let mut readonly: Option<bool> = None;
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        let bool_value = || match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(v) => Err(format!("invalid value {v:?} for mount option {key}")),
        };
        let need = || {
            value
                .clone()
                .ok_or_else(|| format!("mount option {key} needs a value"))
        };
        match key.as_str() {
            "type" => {
                m.kind = match need()?.as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    t => {
                        return Err(format!(
                            "unsupported mount type {t:?}: use bind, cache, tmpfs, secret or ssh"
                        ))
                    }
                }
            }
            "target" | "dst" | "destination" => m.target = Some(need()?),
            "source" | "src" => m.source = Some(need()?),
            "from" => m.from = Some(need()?),
            "readonly" | "ro" => readonly = Some(bool_value()?),
            "readwrite" | "rw" => readonly = Some(!bool_value()?),
            "id" => m.id = Some(need()?),
            "sharing" => {
                let s = need()?;
                if !matches!(s.as_str(), "shared" | "private" | "locked") {
                    return Err(format!(
                        "unsupported sharing value {s:?}: use shared, private or locked"
                    ));
                }
                m.sharing = Some(s);
            }
            "mode" => m.mode = Some(need()?),
            "uid" => m.uid = Some(need()?),
            "gid" => m.gid = Some(need()?),
            "required" => m.required = bool_value()?,
            "size" => m.size = Some(need()?),
            "env" => m.env = Some(need()?),
            _ => return Err(format!("unexpected key {key:?} in --mount={spec}")),
        }
    }
    m.readonly = readonly.unwrap_or(matches!(m.kind, MountType::Bind));
    if m.target.is_none()
        && matches!(
            m.kind,
            MountType::Bind | MountType::Cache | MountType::Tmpfs
        )
    {
        return Err(format!("--mount={spec}: a target is required"));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_mount_names_its_secret_as_buildkit_does() {
        let id = |spec: &str| parse_mount(spec).unwrap().secret_id();
        assert_eq!(id("type=secret,id=a,source=b"), Some("b".into()));
        assert_eq!(id("type=secret,id=a,target=/x/y"), Some("a".into()));
        assert_eq!(
            id("type=secret,target=/etc/app.key"),
            Some("app.key".into())
        );
        assert_eq!(id("type=secret,env=TOKEN"), None);
    }
}
