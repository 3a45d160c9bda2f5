//! Loading a project as Compose v2 does: find the files, read `.env`, parse each file, interpolate,
//! check it against the schema, normalize its services, merge the files in order, name the
//! project, pick the active profiles, and write out top-level networks/volumes/secrets the
//! services use. The result is the model `config` prints and `up` acts on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::interpolate::{interpolate, Env, InterpolateError};
use crate::normalize::{self, absolute, NormalizeError};
use crate::schema::{self, SchemaError};

/// The file names Compose looks for, in order of preference.
pub const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// What `-f`, `-p`, `--project-directory`, `--env-file`, `--profile` and the environment say.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` files in order (`-` is not supported); empty: look for [`DEFAULT_FILES`] from
    /// `cwd` upwards, as Compose does.
    pub files: Vec<PathBuf>,
    pub project_directory: Option<PathBuf>,
    pub project_name: Option<String>,
    pub env_files: Vec<PathBuf>,
    pub profiles: Vec<String>,
    /// The process environment (`COMPOSE_FILE`, `COMPOSE_PROJECT_NAME`, `COMPOSE_PROFILES` and
    /// interpolation variables are read from it).
    pub environment: Env,
    pub cwd: PathBuf,
}

/// A loaded project.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    /// The project directory (relative paths are resolved against it).
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    /// The normalized model, as `config --format json` prints it.
    pub model: Value,
    /// Things Compose warns about (unset variables, the obsolete `version`).
    pub warnings: Vec<String>,
    /// The variables interpolation saw (`environment:` secrets and configs read theirs here).
    pub env: Env,
}

/// Why a project does not load. Texts follow Compose v2's.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no configuration file provided: not found")]
    NoFile,
    #[error("open {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {detail}", path.display())]
    Yaml { path: PathBuf, detail: String },
    #[error("validating {}: {source}", path.display())]
    Schema {
        path: PathBuf,
        #[source]
        source: SchemaError,
    },
    #[error("error while interpolating {at}: {source}")]
    Interpolate {
        at: String,
        #[source]
        source: InterpolateError,
    },
    #[error("{source}")]
    Normalize {
        #[source]
        source: NormalizeError,
    },
    #[error("failed to read {}: {detail}", path.display())]
    EnvFile { path: PathBuf, detail: String },
    #[error("project name {0:?} must contain only lowercase letters, digits, dashes and underscores, and start with a letter or digit")]
    BadName(String),
    #[error(
        "service {service:?} depends on undefined service {missing:?}: invalid compose project"
    )]
    UndefinedService { service: String, missing: String },
    #[error("dependency cycle detected: {0}")]
    Cycle(String),
    #[error("service {service:?} refers to undefined {kind} {name}: invalid compose project")]
    Undefined {
        service: String,
        kind: &'static str,
        name: String,
    },
    #[error("services.{0} must be a mapping")]
    NotAService(String),
    #[error("{}: {detail}", path.display())]
    Include { path: PathBuf, detail: String },
    #[error("cannot extend service {service:?} in {}: {detail}", file.display())]
    Extends {
        service: String,
        file: PathBuf,
        detail: String,
    },
}

/// One file as a normalized document: parsed, interpolated, checked, its `include`s merged in
/// and its `extends` resolved. Relative paths are resolved against `dir`; `stack` holds the
/// files being included (a file that includes itself is refused).
fn load_file(
    f: &Path,
    dir: &Path,
    env: &Env,
    warnings: &mut Vec<String>,
    stack: &mut Vec<PathBuf>,
) -> Result<Value, LoadError> {
    let mut doc = read_checked(f, env, warnings)?;
    if stack.iter().any(|s| s == f) {
        return Err(LoadError::Include {
            path: f.to_path_buf(),
            detail: "include cycle".into(),
        });
    }
    stack.push(f.to_path_buf());
    let includes = doc
        .as_object_mut()
        .and_then(|m| m.remove("include"))
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let mut imported = json!({});
    for inc in includes {
        let (paths, project_dir, env_files) = match &inc {
            Value::String(p) => (vec![p.clone()], None, vec![]),
            Value::Object(o) => {
                let paths = match o.get("path") {
                    Some(Value::String(p)) => vec![p.clone()],
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect(),
                    _ => vec![],
                };
                let env_files = match o.get("env_file") {
                    Some(Value::String(p)) => vec![p.clone()],
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect(),
                    _ => vec![],
                };
                (
                    paths,
                    o.get("project_directory")
                        .and_then(Value::as_str)
                        .map(String::from),
                    env_files,
                )
            }
            _ => continue,
        };
        let Some(first) = paths.first() else {
            return Err(LoadError::Include {
                path: f.to_path_buf(),
                detail: "an include entry needs a path".into(),
            });
        };
        let first_abs = absolute(dir, first);
        let inc_dir = match &project_dir {
            Some(d) => absolute(dir, d),
            None => first_abs
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| dir.to_path_buf()),
        };
        // The included project sees its own .env (or env_file) beneath the including one's.
        let mut inc_env = Env::new();
        let env_paths: Vec<PathBuf> = if env_files.is_empty() {
            vec![inc_dir.join(".env")]
        } else {
            env_files.iter().map(|e| absolute(dir, e)).collect()
        };
        for ep in env_paths {
            if let Ok(text) = std::fs::read_to_string(&ep) {
                let pairs = crate::dotenv::parse(&text, env).map_err(|e| LoadError::EnvFile {
                    path: ep.clone(),
                    detail: e.to_string(),
                })?;
                inc_env.extend(pairs);
            }
        }
        inc_env.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut sub = json!({});
        for p in &paths {
            let pf = absolute(dir, p);
            let d = load_file(&pf, &inc_dir, &inc_env, warnings, stack)?;
            merge(&mut sub, d, "");
        }
        for section in ["services", "networks", "volumes", "secrets", "configs"] {
            if let Some(Value::Object(items)) = sub.get(section) {
                for (k, v) in items {
                    let defined_here = doc.pointer(&format!("/{section}/{k}")).is_some();
                    let defined_before = imported.pointer(&format!("/{section}/{k}")).is_some();
                    if defined_here || defined_before {
                        return Err(LoadError::Include {
                            path: first_abs.clone(),
                            detail: format!("{section}.{k} conflicts with imported resource"),
                        });
                    }
                    imported[section][k] = v.clone();
                }
            }
        }
    }
    normalize_services(&mut doc, dir, env)?;
    resolve_extends(&mut doc, f, dir, env, warnings)?;
    stack.pop();
    if imported.as_object().is_some_and(|m| !m.is_empty()) {
        merge(&mut imported, doc, "");
        return Ok(imported);
    }
    Ok(doc)
}

/// Read, parse, interpolate and schema-check one file (the obsolete `version` dropped with a
/// warning).
fn read_checked(f: &Path, env: &Env, warnings: &mut Vec<String>) -> Result<Value, LoadError> {
    let text = std::fs::read_to_string(f).map_err(|source| LoadError::Read {
        path: f.to_path_buf(),
        source,
    })?;
    let doc = parse_yaml(&text).map_err(|detail| LoadError::Yaml {
        path: f.to_path_buf(),
        detail,
    })?;
    let mut doc = match doc {
        Value::Null => json!({}),
        d => d,
    };
    interpolate_tree(&mut doc, "", env, warnings)?;
    schema::validate(&doc).map_err(|source| LoadError::Schema {
        path: f.to_path_buf(),
        source,
    })?;
    if let Some(m) = doc.as_object_mut() {
        if m.remove("version").is_some() {
            let w = format!(
                "{}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion",
                f.display()
            );
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
    }
    Ok(doc)
}

/// Replace each service's `extends` by the service it names (in this file or in `file`,
/// whose relative paths are its own), with this service merged over it.
fn resolve_extends(
    doc: &mut Value,
    f: &Path,
    dir: &Path,
    env: &Env,
    warnings: &mut Vec<String>,
) -> Result<(), LoadError> {
    let Some(Value::Object(services)) = doc.get("services").cloned() else {
        return Ok(());
    };
    let mut resolved = serde_json::Map::new();
    for name in services.keys() {
        let svc = extended(&services, name, f, dir, env, warnings, &mut Vec::new())?;
        resolved.insert(name.clone(), svc);
    }
    doc["services"] = Value::Object(resolved);
    Ok(())
}

fn extended(
    services: &Map<String, Value>,
    name: &str,
    f: &Path,
    dir: &Path,
    env: &Env,
    warnings: &mut Vec<String>,
    chain: &mut Vec<String>,
) -> Result<Value, LoadError> {
    let mut svc = services.get(name).cloned().unwrap_or(json!({}));
    let Some(ext) = svc.as_object_mut().and_then(|m| m.remove("extends")) else {
        return Ok(svc);
    };
    let (file, base_name) = match &ext {
        Value::String(s) => (None, s.clone()),
        Value::Object(o) => (
            o.get("file").and_then(Value::as_str).map(String::from),
            o.get("service")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        _ => (None, String::new()),
    };
    let key = format!("{}:{base_name}", file.as_deref().unwrap_or(""));
    if chain.contains(&key) {
        return Err(LoadError::Extends {
            service: name.to_string(),
            file: f.to_path_buf(),
            detail: format!("circular reference with extends: {}", chain.join(" -> ")),
        });
    }
    chain.push(key);
    let mut base = match &file {
        None => {
            if !services.contains_key(&base_name) {
                return Err(LoadError::Extends {
                    service: name.to_string(),
                    file: f.to_path_buf(),
                    detail: format!("service {base_name:?} not found"),
                });
            }
            extended(services, &base_name, f, dir, env, warnings, chain)?
        }
        Some(file) => {
            let path = absolute(f.parent().unwrap_or(dir), file);
            let base_dir = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| dir.to_path_buf());
            let mut other = read_checked(&path, env, warnings)?;
            normalize_services(&mut other, &base_dir, env)?;
            let other_services = other
                .get("services")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if !other_services.contains_key(&base_name) {
                return Err(LoadError::Extends {
                    service: name.to_string(),
                    file: path.clone(),
                    detail: format!("service {base_name:?} not found"),
                });
            }
            extended(
                &other_services,
                &base_name,
                &path,
                &base_dir,
                env,
                warnings,
                chain,
            )?
        }
    };
    merge(&mut base, svc, "");
    Ok(base)
}

/// Load a project.
pub fn load(opts: &LoadOptions) -> Result<Project, LoadError> {
    let files = find_files(opts)?;
    let dir = match &opts.project_directory {
        Some(d) => absolute(&opts.cwd, &d.to_string_lossy()),
        None => files[0]
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| opts.cwd.clone()),
    };
    let env = environment(opts, &dir)?;
    let mut warnings = Vec::new();
    let mut merged = Value::Object(Map::new());
    for f in &files {
        let doc = load_file(f, &dir, &env, &mut warnings, &mut Vec::new())?;
        merge(&mut merged, doc, "");
    }
    let name = project_name(opts, &merged, &dir, &env)?;
    let mut model = merged;
    let m = model
        .as_object_mut()
        .expect("a compose document is a mapping");
    m.insert("name".into(), json!(name));
    if let Some(Value::Object(services)) = m.get_mut("services") {
        for svc in services.values_mut() {
            if let Value::Object(svc) = svc {
                normalize::defaults(svc);
            }
        }
    }
    select_profiles(m, opts, &env);
    check_dependencies(m)?;
    top_level(m, &name, &dir)?;
    Ok(Project {
        name,
        dir,
        files,
        model,
        warnings,
        env,
    })
}

fn find_files(opts: &LoadOptions) -> Result<Vec<PathBuf>, LoadError> {
    if !opts.files.is_empty() {
        return Ok(opts
            .files
            .iter()
            .map(|f| absolute(&opts.cwd, &f.to_string_lossy()))
            .collect());
    }
    if let Some(list) = opts.environment.get("COMPOSE_FILE") {
        let sep = opts
            .environment
            .get("COMPOSE_PATH_SEPARATOR")
            .cloned()
            .unwrap_or_else(|| ":".into());
        let files: Vec<PathBuf> = list
            .split(sep.as_str())
            .filter(|s| !s.is_empty())
            .map(|f| absolute(&opts.cwd, f))
            .collect();
        if !files.is_empty() {
            return Ok(files);
        }
    }
    let start = opts
        .project_directory
        .as_ref()
        .map(|d| absolute(&opts.cwd, &d.to_string_lossy()))
        .unwrap_or_else(|| opts.cwd.clone());
    let mut dir = Some(start.as_path());
    while let Some(d) = dir {
        for name in DEFAULT_FILES {
            let p = d.join(name);
            if p.is_file() {
                let mut files = vec![p];
                // compose.override.yaml (or docker-compose.override.yml) beside it.
                let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name);
                for ext in ["yaml", "yml"] {
                    let o = d.join(format!("{stem}.override.{ext}"));
                    if o.is_file() {
                        files.push(o);
                        break;
                    }
                }
                return Ok(files);
            }
        }
        dir = d.parent();
    }
    Err(LoadError::NoFile)
}

/// The interpolation environment: `.env` (or `--env-file`s) beneath the process environment.
fn environment(opts: &LoadOptions, dir: &Path) -> Result<Env, LoadError> {
    let mut env = Env::new();
    let files: Vec<(PathBuf, bool)> = if opts.env_files.is_empty() {
        vec![(dir.join(".env"), false)]
    } else {
        opts.env_files
            .iter()
            .map(|f| (absolute(&opts.cwd, &f.to_string_lossy()), true))
            .collect()
    };
    for (path, required) in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
            Err(e) => {
                return Err(LoadError::EnvFile {
                    path,
                    detail: e.to_string(),
                })
            }
        };
        let seen: Env = env
            .iter()
            .chain(opts.environment.iter())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let pairs = crate::dotenv::parse(&text, &seen).map_err(|e| LoadError::EnvFile {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        env.extend(pairs);
    }
    // The process environment wins over `.env`.
    env.extend(opts.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(env)
}

/// YAML as JSON values, YAML 1.2 booleans (`yes` stays a string, as in Compose).
pub fn parse_yaml(text: &str) -> Result<Value, String> {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.with_snippet = false;
    serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| {
        let s = e.to_string();
        // One line: drop the "error: " prefix and any trailing source pointer.
        let first = s.lines().next().unwrap_or_default();
        first.strip_prefix("error: ").unwrap_or(first).to_string()
    })
}

/// The model as `config` prints it: every `$` in a string written `$$`, so the output loads
/// back to the same project (Compose v2 does the same).
pub fn for_output(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace('$', "$$")),
        Value::Array(a) => Value::Array(a.iter().map(for_output).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), for_output(v))).collect())
        }
        other => other.clone(),
    }
}

/// The model as YAML (`config`'s default format).
pub fn to_yaml(v: &Value) -> Result<String, String> {
    serde_saphyr::to_string(v).map_err(|e| format!("writing YAML: {e}"))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn interpolate_tree(
    v: &mut Value,
    path: &str,
    env: &Env,
    warnings: &mut Vec<String>,
) -> Result<(), LoadError> {
    match v {
        Value::String(s) => {
            let r = interpolate(s, env).map_err(|source| LoadError::Interpolate {
                at: path.to_string(),
                source,
            })?;
            for u in r.unset {
                let w = format!("The \"{u}\" variable is not set. Defaulting to a blank string.");
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
            *s = r.text;
        }
        Value::Array(items) => {
            for (i, it) in items.iter_mut().enumerate() {
                interpolate_tree(it, &format!("{path}[{i}]"), env, warnings)?;
            }
        }
        Value::Object(m) => {
            for (k, it) in m.iter_mut() {
                interpolate_tree(it, &join(path, k), env, warnings)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn normalize_services(doc: &mut Value, dir: &Path, env: &Env) -> Result<(), LoadError> {
    let Some(Value::Object(services)) = doc.get_mut("services") else {
        return Ok(());
    };
    let home = env.get("HOME").map(PathBuf::from);
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| e.to_string());
    let cx = normalize::Context {
        dir,
        env,
        home: home.as_deref(),
        read: &read,
    };
    for (name, svc) in services.iter_mut() {
        normalize::service(name, svc, &cx).map_err(|source| LoadError::Normalize { source })?;
    }
    Ok(())
}

/// Lists that later files extend (deduplicated) rather than replace.
const APPENDED: &[&str] = &[
    "cap_add",
    "cap_drop",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "expose",
    "external_links",
    "extra_hosts",
    "group_add",
    "links",
    "ports",
    "profiles",
    "secrets",
    "configs",
    "security_opt",
    "tmpfs",
    "volumes_from",
];

/// Merge `over` into `base` as Compose merges override files: mappings key by key, volumes by
/// target, the [`APPENDED`] lists as a union, anything else replaced.
pub fn merge(base: &mut Value, over: Value, key: &str) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    // A null in a later file does not unset what an earlier one said.
                    Some(_) if v.is_null() => {}
                    Some(existing) => merge(existing, v, &k),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) if key == "volumes" => {
            for v in o {
                let target = v.get("target").cloned();
                match b
                    .iter_mut()
                    .find(|e| target.is_some() && e.get("target") == target.as_ref())
                {
                    Some(e) => *e = v,
                    None => b.push(v),
                }
            }
        }
        (Value::Array(b), Value::Array(o)) if APPENDED.contains(&key) => {
            for v in o {
                if !b.contains(&v) {
                    b.push(v);
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// `-p`, then `COMPOSE_PROJECT_NAME`, then the file's `name:`, then the directory's name.
fn project_name(
    opts: &LoadOptions,
    doc: &Value,
    dir: &Path,
    env: &Env,
) -> Result<String, LoadError> {
    if let Some(n) = &opts.project_name {
        return checked_name(n);
    }
    if let Some(n) = env.get("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()) {
        return checked_name(n);
    }
    if let Some(n) = doc.get("name").and_then(Value::as_str) {
        return Ok(normalize_name(n));
    }
    let base = dir
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(normalize_name(&base))
}

/// Compose's `NormalizeProjectName`: lowercase, only `[a-z0-9_-]` kept, leading `_`/`-` dropped.
pub fn normalize_name(s: &str) -> String {
    let lower: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
        .collect();
    lower.trim_start_matches(['_', '-']).to_string()
}

fn checked_name(n: &str) -> Result<String, LoadError> {
    let ok = !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
        && n.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(n.to_string())
    } else {
        Err(LoadError::BadName(n.to_string()))
    }
}

/// Drop services whose profiles are not active (`--profile`, `COMPOSE_PROFILES`; `*` = all).
fn select_profiles(m: &mut Map<String, Value>, opts: &LoadOptions, env: &Env) {
    let mut active: BTreeSet<String> = opts.profiles.iter().cloned().collect();
    if active.is_empty() {
        if let Some(p) = env.get("COMPOSE_PROFILES") {
            active.extend(
                p.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            );
        }
    }
    let Some(Value::Object(services)) = m.get_mut("services") else {
        return;
    };
    services.retain(|_, svc| {
        let profiles: Vec<&str> = svc
            .get("profiles")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        profiles.is_empty() || active.contains("*") || profiles.iter().any(|p| active.contains(*p))
    });
}

/// Every `depends_on` names a service, and there is no cycle.
fn check_dependencies(m: &Map<String, Value>) -> Result<(), LoadError> {
    let empty = Map::new();
    let services = m
        .get("services")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut deps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, svc) in services {
        let list: Vec<&str> = svc
            .get("depends_on")
            .and_then(Value::as_object)
            .map(|d| {
                d.iter()
                    .filter(|(_, spec)| spec.get("required") != Some(&Value::Bool(false)))
                    .map(|(k, _)| k.as_str())
                    .collect()
            })
            .unwrap_or_default();
        for d in &list {
            if !services.contains_key(*d) {
                return Err(LoadError::UndefinedService {
                    service: name.clone(),
                    missing: d.to_string(),
                });
            }
        }
        deps.insert(name, list);
    }
    crate::order::start_order(&deps)
        .map(|_| ())
        .map_err(|cycle| LoadError::Cycle(cycle.join(" -> ")))
}

/// Top-level networks, volumes, secrets and configs: only the used ones, each with its
/// engine-side name; the implicit `default` network when a service is on it.
fn top_level(m: &mut Map<String, Value>, project: &str, dir: &Path) -> Result<(), LoadError> {
    let services = m
        .get("services")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut used_nets = BTreeSet::new();
    let mut used_vols = BTreeSet::new();
    let mut used_secrets = BTreeSet::new();
    let mut used_configs = BTreeSet::new();
    for svc in services.values() {
        if let Some(n) = svc.get("networks").and_then(Value::as_object) {
            used_nets.extend(n.keys().cloned());
        }
        for v in svc
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if v.get("type").and_then(Value::as_str) == Some("volume") {
                if let Some(s) = v.get("source").and_then(Value::as_str) {
                    used_vols.insert(s.to_string());
                }
            }
        }
        for (key, set) in [
            ("secrets", &mut used_secrets),
            ("configs", &mut used_configs),
        ] {
            for s in svc.get(key).and_then(Value::as_array).into_iter().flatten() {
                if let Some(src) = s.get("source").and_then(Value::as_str) {
                    set.insert(src.to_string());
                }
            }
        }
    }
    for (kind, key, used) in [
        ("network", "networks", &used_nets),
        ("volume", "volumes", &used_vols),
        ("secret", "secrets", &used_secrets),
        ("config", "configs", &used_configs),
    ] {
        let declared = m
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut out = Map::new();
        for name in used {
            let spec = match declared.get(name) {
                Some(Value::Null) | None if kind == "network" && name == "default" => json!({}),
                Some(Value::Null) => json!({}),
                Some(v) => v.clone(),
                None => {
                    let service = services
                        .iter()
                        .find(|(_, s)| refers(s, key, name))
                        .map(|(n, _)| n.clone())
                        .unwrap_or_default();
                    return Err(LoadError::Undefined {
                        service,
                        kind,
                        name: name.clone(),
                    });
                }
            };
            out.insert(
                name.clone(),
                top_level_entry(kind, name, spec, project, dir),
            );
        }
        if out.is_empty() {
            m.remove(key);
        } else {
            m.insert(key.into(), Value::Object(out));
        }
    }
    Ok(())
}

fn refers(svc: &Value, key: &str, name: &str) -> bool {
    match svc.get(key) {
        Some(Value::Object(o)) => o.contains_key(name),
        Some(Value::Array(a)) => a
            .iter()
            .any(|v| v.get("source").and_then(Value::as_str) == Some(name)),
        _ => false,
    }
}

fn top_level_entry(kind: &str, key: &str, spec: Value, project: &str, dir: &Path) -> Value {
    let mut m = spec.as_object().cloned().unwrap_or_default();
    if let Some(l) = m.get_mut("labels") {
        *l = normalize::list_to_map(l, false);
    }
    let external = match m.get("external") {
        Some(Value::Bool(b)) => *b,
        // The legacy `external: {name: x}` form.
        Some(Value::Object(e)) => {
            if let Some(n) = e.get("name").cloned() {
                m.insert("name".into(), n);
            }
            m.insert("external".into(), json!(true));
            true
        }
        _ => false,
    };
    if !m.contains_key("name") {
        let name = if external {
            key.to_string()
        } else {
            format!("{project}_{key}")
        };
        m.insert("name".into(), json!(name));
    }
    if kind == "network" {
        m.entry("ipam").or_insert_with(|| json!({}));
    }
    if matches!(kind, "secret" | "config") {
        if let Some(f) = m.get("file").and_then(Value::as_str) {
            let abs = absolute(dir, f).to_string_lossy().into_owned();
            m.insert("file".into(), json!(abs));
        }
    }
    Value::Object(m)
}
