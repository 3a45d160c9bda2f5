//! The build executor: stages needed for `--target` run as futures (independent stages
//! concurrently), each step is looked up in the cache by a chained key before anything runs,
//! and results are cached as they complete so a failed build resumes where it stopped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use berth_dockerfile::ignore::Matcher;
use berth_dockerfile::{
    parse, parse_instruction, Dependency, Dockerfile, Instruction, InstructionKind, Layered,
    MountType,
};
use berth_oci::{Digest, ImageConfig, Platform};
use futures::future::{join_all, BoxFuture, FutureExt, Shared};
use sha2::{Digest as _, Sha256};

use crate::backend::{
    BuildBackend, CopyFrom, CopyRequest, Event, Layer, MountSource, Network, RunMount, RunRequest,
    SecretValue, Sink, State,
};
use crate::config::{self, apply_metadata, env_pairs, join_workdir, push_history, shell_of};
use crate::context::{collect, content_hash, SourceOptions};
use crate::error::{BuildError, ErrorKind, Result};
use crate::fetch::{is_git_url, is_http_url, parse_checksum, verify, Download};
use crate::named::{named_context_key, NamedContext};

/// Whether `--cache-from` (when given) vouches for a cached step's result.
fn cache_source_allows(sources: &Option<Vec<Vec<Digest>>>, hit: &State) -> bool {
    let Some(sources) = sources else {
        return true;
    };
    let ids = &hit.config.rootfs.diff_ids;
    sources.iter().any(|chain| chain.starts_with(ids))
}

/// Everything a build needs besides the backend.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The Dockerfile text.
    pub dockerfile: String,
    /// The build context directory.
    pub context: PathBuf,
    /// The context's `.dockerignore` (already applied to what COPY sees).
    pub ignore: Matcher,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    /// Labels added to the final image.
    pub labels: BTreeMap<String, String>,
    pub tags: Vec<String>,
    /// Default network for RUN (`networkmode`).
    pub network: Network,
    /// `--cache-from`: the layer chains (diff ids) of the named images that exist. When set, a
    /// cached step is reused only if its filesystem is a prefix of one of them, as the classic
    /// builder only trusts the given images then (no images: nothing is reused).
    pub cache_from: Option<Vec<Vec<Digest>>>,
    /// Build secrets by ID, for `RUN --mount=type=secret` (BuildKit's session supplies them).
    pub secrets: BTreeMap<String, SecretValue>,
    /// The IDs of the SSH agents the client forwards (`RUN --mount=type=ssh`); the backend
    /// knows how to reach them.
    pub ssh: BTreeSet<String>,
    /// Named build contexts by the name `FROM`/`--from=` use (see [`crate::named`]).
    pub named_contexts: BTreeMap<String, NamedContext>,
}

/// What a finished build made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutput {
    pub image_id: Digest,
    /// Steps that executed (RUN/COPY/ADD/WORKDIR/metadata computed anew).
    pub steps_run: usize,
    /// Steps whose result came from the cache.
    pub steps_cached: usize,
}

#[derive(Debug, Clone)]
struct StageResult {
    state: State,
    key: String,
}

struct Ctx {
    df: Dockerfile,
    req: BuildRequest,
    backend: Arc<dyn BuildBackend>,
    sink: Sink,
    total: usize,
    run: AtomicUsize,
    cached: AtomicUsize,
    platform: Platform,
    /// Named contexts by lookup key ([`crate::named::named_context_key`]).
    named: BTreeMap<String, NamedContext>,
    /// ARG names declared (before FROM or in a stage that ran): the build args they consume.
    consumed: std::sync::Mutex<BTreeSet<String>>,
}

fn key_of(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn scratch(platform: &Platform) -> State {
    State {
        config: ImageConfig {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone(),
            ..ImageConfig::default()
        },
        layers: Vec::new(),
        rootfs: None,
    }
}

/// Build the image `req` describes. Progress goes to `sink` as it happens.
pub async fn build(
    backend: Arc<dyn BuildBackend>,
    req: BuildRequest,
    sink: Sink,
) -> Result<BuildOutput> {
    let mut df = parse(&req.dockerfile)?;
    let named = crate::named::by_key(&req.named_contexts);
    crate::named::override_stages(&mut df, &named);
    let platform = Platform::host();
    let mut args: Vec<(String, String)> = req
        .build_args
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in auto_platform_args(&platform) {
        if !req.build_args.contains_key(&k) {
            args.push((k, v));
        }
    }
    let target = df.target(req.target.as_deref())?.index;
    let order = df.stages_needed(target, &args)?;
    let total: usize = order
        .iter()
        .map(|i| df.stages[*i].instructions.len() + 1)
        .sum();
    let mut offsets = HashMap::new();
    let mut off = 0;
    for i in &order {
        offsets.insert(*i, off);
        off += df.stages[*i].instructions.len() + 1;
    }
    let mut deps_of = HashMap::new();
    for i in &order {
        let deps: Vec<usize> = df
            .dependencies(*i, &args)?
            .into_iter()
            .filter_map(|d| match d {
                Dependency::Stage(j) => Some(j),
                Dependency::Image(_) => None,
            })
            .collect();
        deps_of.insert(*i, deps);
    }
    let consumed = df.meta_args.iter().map(|a| a.name.clone()).collect();
    let ctx = Arc::new(Ctx {
        consumed: std::sync::Mutex::new(consumed),
        df,
        req,
        backend,
        sink,
        total,
        run: AtomicUsize::new(0),
        cached: AtomicUsize::new(0),
        platform,
        named,
    });
    type StageFut = Shared<BoxFuture<'static, Result<StageResult>>>;
    let mut futs: HashMap<usize, StageFut> = HashMap::new();
    for i in &order {
        let deps: Vec<(usize, StageFut)> =
            deps_of[i].iter().map(|j| (*j, futs[j].clone())).collect();
        let c = ctx.clone();
        let (i, offset, args) = (*i, offsets[i], args.clone());
        let fut = async move {
            let results =
                join_all(deps.into_iter().map(|(j, f)| async move { (j, f.await) })).await;
            let mut done = HashMap::new();
            for (j, r) in results {
                done.insert(j, r?);
            }
            run_stage(&c, i, offset, &args, &done).await
        }
        .boxed()
        .shared();
        futs.insert(i, fut);
    }
    let result = futs[&target].clone().await?;
    if let Some(w) = unconsumed_warning(&ctx.req.build_args, &ctx.consumed) {
        emit(&ctx, Event::Warning(w));
    }
    let mut state = result.state;
    if !ctx.req.labels.is_empty() {
        let labels = state
            .config
            .config
            .labels
            .get_or_insert_with(Default::default);
        for (k, v) in &ctx.req.labels {
            labels.insert(k.clone(), v.clone());
        }
    }
    let image_id = ctx.backend.commit(&state, &ctx.req.tags).await?;
    Ok(BuildOutput {
        image_id,
        steps_run: ctx.run.load(Ordering::Relaxed),
        steps_cached: ctx.cached.load(Ordering::Relaxed),
    })
}

/// Build args dockerd accepts without an ARG (proxies).
const BUILTIN_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// dockerd's warning for `--build-arg`s no ARG declared (names sorted; Go prints a list as
/// `[a b]`).
fn unconsumed_warning(
    given: &BTreeMap<String, String>,
    consumed: &std::sync::Mutex<BTreeSet<String>>,
) -> Option<String> {
    let consumed = consumed.lock().unwrap_or_else(|p| p.into_inner());
    let left: Vec<&str> = given
        .keys()
        .map(String::as_str)
        .filter(|k| !consumed.contains(*k) && !BUILTIN_ARGS.contains(k))
        .collect();
    (!left.is_empty()).then(|| {
        format!(
            "[Warning] One or more build-args [{}] were not consumed",
            left.join(" ")
        )
    })
}

/// The automatic platform ARGs (`TARGETARCH` ...) for `p`.
pub fn auto_platform_args(p: &Platform) -> Vec<(String, String)> {
    let plat = match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    };
    let variant = p.variant.clone().unwrap_or_default();
    let mut out = Vec::new();
    for pre in ["TARGET", "BUILD"] {
        out.push((format!("{pre}PLATFORM"), plat.clone()));
        out.push((format!("{pre}OS"), p.os.clone()));
        out.push((format!("{pre}ARCH"), p.architecture.clone()));
        out.push((format!("{pre}VARIANT"), variant.clone()));
    }
    out
}

fn emit(ctx: &Ctx, e: Event) {
    (ctx.sink)(e)
}

fn stage_from_text(ctx: &Ctx, i: usize) -> String {
    let s = &ctx.df.stages[i];
    let mut t = String::from("FROM ");
    if let Some(p) = &s.platform {
        t.push_str(&format!("--platform={p} "));
    }
    t.push_str(&s.base);
    if let Some(n) = &s.name {
        t.push_str(&format!(" AS {n}"));
    }
    t
}

async fn run_stage(
    ctx: &Ctx,
    i: usize,
    offset: usize,
    args: &[(String, String)],
    deps: &HashMap<usize, StageResult>,
) -> Result<StageResult> {
    let df = &ctx.df;
    let stage = &df.stages[i];
    let escape = df.escape();
    let line = stage.line;
    let mut n = offset + 1;
    emit(
        ctx,
        Event::Step {
            index: n,
            total: ctx.total,
            text: stage_from_text(ctx, i),
        },
    );
    if let Some(p) = df
        .platform_of(i, &args)
        .map_err(|e| BuildError::from(e).at_line(line))?
    {
        let want = Platform::parse(&p).map_err(|e| BuildError::Step {
            line,
            kind: ErrorKind::Invalid,
            message: format!("invalid --platform {p:?}: {e}"),
        })?;
        if want.os != ctx.platform.os || want.architecture != ctx.platform.architecture {
            return Err(BuildError::Step {
                line,
                kind: ErrorKind::Invalid,
                message: format!(
                    "platform {p} is not supported: this engine builds for {}/{} only",
                    ctx.platform.os, ctx.platform.architecture
                ),
            });
        }
    }
    let (mut state, mut key, has_triggers) = match df.base_of(i, &args)? {
        Dependency::Stage(j) => {
            let r = deps.get(&j).cloned().ok_or_else(|| BuildError::Step {
                line,
                kind: ErrorKind::Internal,
                message: format!("stage {j} was not built before stage {i}"),
            })?;
            // dockerd runs a stage's ONBUILD triggers in the stage built FROM it too.
            (r.state, r.key, true)
        }
        Dependency::Image(name) if name.eq_ignore_ascii_case("scratch") => {
            (scratch(&ctx.platform), key_of(&["scratch"]), false)
        }
        Dependency::Image(name) if ctx.named.contains_key(&named_context_key(&name)) => {
            let (s, k) = named_state(ctx, &name).await.map_err(|e| e.at_line(line))?;
            (s, k, true)
        }
        Dependency::Image(name) => {
            let s = ctx
                .backend
                .resolve_image(&name, ctx.req.pull)
                .await
                .map_err(|e| e.at_line(line))?;
            let k = key_of(&["image", &s.id().to_string()]);
            (s, k, true)
        }
    };
    emit(ctx, Event::StepDone { id: state.id() });

    // ONBUILD triggers of the base (image or stage) run first, then are cleared.
    let mut instructions: Vec<Instruction> = Vec::new();
    if has_triggers {
        for t in state.config.config.on_build.take().unwrap_or_default() {
            let mut ins =
                parse_instruction(&t, escape).map_err(|e| BuildError::from(e).at_line(line))?;
            ins.line = line;
            ins.end_line = line;
            instructions.push(ins);
        }
        if !instructions.is_empty() {
            let n = instructions.len();
            let plural = if n > 1 { "s" } else { "" };
            emit(
                ctx,
                Event::Warning(format!("# Executing {n} build trigger{plural}")),
            );
        }
    }
    instructions.extend(stage.instructions.iter().cloned());

    let meta = df.meta_arg_values(&args)?;
    let build_args: Vec<(String, String)> = args.to_vec();
    let mut stage_args: Vec<(String, String)> = Vec::new();
    let mut cmd_set = false;
    for ins in &instructions {
        n += 1;
        emit(
            ctx,
            Event::Step {
                index: n,
                total: ctx.total,
                text: ins.original.trim().to_string(),
            },
        );
        let line = ins.line;
        let env = env_pairs(&state.config);
        let kind = ins
            .kind
            .expand(&Layered(&env, &stage_args), escape)
            .map_err(|e| BuildError::from(e).at_line(line))?;
        if let InstructionKind::Arg(decls) = &kind {
            ctx.consumed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(decls.iter().map(|d| d.name.clone()));
            for d in decls {
                let value = build_args
                    .iter()
                    .find(|(k, _)| *k == d.name)
                    .map(|(_, v)| v.clone())
                    .or_else(|| d.default.clone())
                    .or_else(|| {
                        meta.iter()
                            .find(|(k, _)| *k == d.name)
                            .map(|(_, v)| v.clone())
                    });
                if let Some(v) = value {
                    stage_args.retain(|(k, _)| *k != d.name);
                    stage_args.push((d.name.clone(), v));
                }
            }
        }
        let (step_text, extra, downloads) = step_identity(ctx, &kind, &state, deps, &stage_args)
            .await
            .map_err(|e| e.at_line(line))?;
        let step_key = key_of(&[&key, &step_text, &extra]);
        if !ctx.req.no_cache {
            let hit = ctx.backend.cache_get(&step_key).await?;
            if let Some(hit) = hit.filter(|h| cache_source_allows(&ctx.req.cache_from, h)) {
                ctx.cached.fetch_add(1, Ordering::Relaxed);
                emit(ctx, Event::Cached);
                state = hit;
                key = step_key;
                if matches!(kind, InstructionKind::Cmd(_)) {
                    cmd_set = true;
                }
                emit(ctx, Event::StepDone { id: state.id() });
                continue;
            }
        }
        ctx.run.fetch_add(1, Ordering::Relaxed);
        let step = Step {
            kind: &kind,
            line,
            downloads: &downloads,
        };
        let next = execute(ctx, step, &state, deps, &stage_args, &mut cmd_set)
            .await
            .map_err(|e| e.at_line(line))?;
        drop(downloads);
        // Every step is an image (as the classic builder commits one per step): its ID is
        // what the step prints, its parent the step before, and the cache trusts a step
        // only while that image exists (`rmi` of the build removes the untagged chain).
        let mut next = next;
        next.rootfs = Some(ctx.backend.register(&next).await?);
        ctx.backend.cache_put(&step_key, &next).await?;
        state = next;
        key = step_key;
        emit(ctx, Event::StepDone { id: state.id() });
    }
    Ok(StageResult { state, key })
}

/// Resolve `--from=` of COPY / RUN --mount to a state and its identity.
async fn from_state(
    ctx: &Ctx,
    from: &str,
    deps: &HashMap<usize, StageResult>,
) -> Result<(State, String)> {
    if let Some(s) = ctx.df.stage(from) {
        if let Some(r) = deps.get(&s.index) {
            return Ok((r.state.clone(), r.key.clone()));
        }
    }
    if ctx.named.contains_key(&named_context_key(from)) {
        return named_state(ctx, from).await;
    }
    let s = ctx.backend.resolve_image(from, ctx.req.pull).await?;
    let id = s.id().to_string();
    Ok((s, id))
}

/// The state a named context stands for, and its identity: the image it names, or a
/// filesystem holding a directory's files (one layer on scratch, cached by their content).
async fn named_state(ctx: &Ctx, name: &str) -> Result<(State, String)> {
    match ctx.named.get(&named_context_key(name)) {
        Some(NamedContext::Image(r)) => {
            let s = ctx.backend.resolve_image(r, ctx.req.pull).await?;
            let k = key_of(&["image", &s.id().to_string()]);
            Ok((s, k))
        }
        Some(NamedContext::Dir(dir)) => {
            let opts = SourceOptions {
                ignore: None,
                strict: true,
                what: "named build context",
                excludes: &[],
            };
            let sources = collect(dir, ".", &opts)?;
            let key = key_of(&["named-context", &content_hash(&sources)?]);
            if let Some(hit) = ctx.backend.cache_get(&key).await? {
                return Ok((hit, key));
            }
            let base = scratch(&ctx.platform);
            let layer = ctx
                .backend
                .copy(
                    &base,
                    CopyRequest {
                        from: CopyFrom::Context(sources),
                        dest: "/".into(),
                        chown: None,
                        chmod: None,
                        extract_archives: false,
                        excludes: vec![],
                    },
                )
                .await?;
            let mut s = with_layer(&base, layer, format!("context {name}"));
            s.rootfs = Some(ctx.backend.register(&s).await?);
            ctx.backend.cache_put(&key, &s).await?;
            Ok((s, key))
        }
        None => Err(BuildError::Request(format!(
            "named build context {name:?} is not defined"
        ))),
    }
}

fn run_argv(kind: &InstructionKind, cfg: &ImageConfig) -> Vec<String> {
    let InstructionKind::Run(r) = kind else {
        return Vec::new();
    };
    let shell = shell_of(cfg);
    if let Some(doc) = r.heredoc_script() {
        let mut v = shell;
        v.push(doc.body());
        return v;
    }
    match (&r.command, r.heredocs.is_empty()) {
        (berth_dockerfile::Command::Shell(line), false) => {
            let mut script = line.clone();
            for d in &r.heredocs {
                script.push('\n');
                script.push_str(&d.body());
                script.push_str(&d.name);
            }
            let mut v = shell;
            v.push(script);
            v
        }
        // `RUN []`: the container runs what the image would (ENTRYPOINT + CMD), as dockerd
        // fills an empty command from the image's.
        (berth_dockerfile::Command::Exec(v), _) if v.is_empty() => {
            let c = &cfg.config;
            let mut v = c.entrypoint.clone().unwrap_or_default();
            v.extend(c.cmd.clone().unwrap_or_default());
            v
        }
        (cmd, _) => config::argv(cmd, &shell),
    }
}

/// The canonical text of a step and the identity of what it reads (content hashes), which
/// together with the parent's key make the step's cache key; plus the `ADD <url>` downloads
/// hashed for it (verified against `--checksum`), which the step copies if it runs.
async fn step_identity(
    ctx: &Ctx,
    kind: &InstructionKind,
    state: &State,
    deps: &HashMap<usize, StageResult>,
    stage_args: &[(String, String)],
) -> Result<(String, String, Vec<Download>)> {
    let mut downloads = Vec::new();
    let text = format!("{kind:?}");
    let extra = match kind {
        InstructionKind::Run(r) => {
            let mut parts = vec![format!("{:?}", run_argv(kind, &state.config))];
            let visible: Vec<String> = stage_args.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parts.push(visible.join("\n"));
            for m in &r.mounts {
                if m.kind == MountType::Bind {
                    match &m.from {
                        Some(f) => parts.push(from_state(ctx, f, deps).await?.1),
                        None => {
                            let src = m.source.clone().unwrap_or_default();
                            let s = collect(&ctx.req.context, &src, &context_opts(ctx, &[]))?;
                            parts.push(content_hash(&s)?);
                        }
                    }
                }
            }
            parts.join("\0")
        }
        InstructionKind::Copy(c) | InstructionKind::Add(c) => match &c.from {
            Some(f) => from_state(ctx, f, deps).await?.1,
            None => {
                let is_add = matches!(kind, InstructionKind::Add(_));
                let checksum = c.checksum.as_deref().map(parse_checksum).transpose()?;
                if checksum.is_some() && !c.sources.iter().all(|s| is_http_url(s)) {
                    return Err(BuildError::Request(
                        "--checksum can only be used when every source is an http(s) URL".into(),
                    ));
                }
                let mut hashes = Vec::new();
                for s in &c.sources {
                    if let Some(doc) = c.heredoc_for(s) {
                        hashes.push(format!("heredoc:{}", doc.content));
                        continue;
                    }
                    if is_git_url(s) {
                        return Err(BuildError::Request(format!(
                            "{} {s}: git sources are not supported yet: clone with RUN git clone",
                            kind.name()
                        )));
                    }
                    if is_http_url(s) {
                        if !is_add {
                            return Err(BuildError::Request(format!(
                                "COPY {s}: a source can't be a URL for COPY; use ADD"
                            )));
                        }
                        let d = ctx.backend.fetch(s).await?;
                        if let Some(want) = &checksum {
                            verify(&d, want)?;
                        }
                        hashes.push(format!("url:{}\0{}", d.name, d.digest));
                        downloads.push(d);
                        continue;
                    }
                    let srcs = collect(&ctx.req.context, s, &context_opts(ctx, &c.excludes))?;
                    hashes.push(content_hash(&srcs)?);
                }
                hashes.join("\0")
            }
        },
        // The values in effect (build args or defaults), so another `--build-arg` value
        // is another step.
        InstructionKind::Arg(_) => stage_args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    Ok((text, extra, downloads))
}

/// One step to execute: the expanded instruction, its line and what was downloaded for it.
struct Step<'a> {
    kind: &'a InstructionKind,
    line: usize,
    downloads: &'a [Download],
}

fn context_opts<'a>(ctx: &'a Ctx, excludes: &'a [String]) -> SourceOptions<'a> {
    SourceOptions {
        ignore: Some(&ctx.req.ignore),
        strict: true,
        what: "build context",
        excludes,
    }
}

fn with_layer(parent: &State, layer: Option<Layer>, created_by: String) -> State {
    let mut s = parent.clone();
    let has = layer.is_some();
    if let Some(l) = layer {
        s.config.rootfs.diff_ids.push(l.diff_id);
        s.layers.push(l.descriptor);
    }
    push_history(&mut s.config, created_by, !has, &now());
    s
}

fn parse_chmod(s: &str, line: usize) -> Result<u32> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| BuildError::Step {
            line,
            kind: ErrorKind::Invalid,
            message: format!("invalid --chmod={s}: use octal bits such as 0755"),
        })
}

async fn execute(
    ctx: &Ctx,
    step: Step<'_>,
    state: &State,
    deps: &HashMap<usize, StageResult>,
    stage_args: &[(String, String)],
    cmd_set: &mut bool,
) -> Result<State> {
    let (kind, line) = (step.kind, step.line);
    let be = &ctx.backend;
    match kind {
        InstructionKind::Run(r) => {
            let args = run_argv(kind, &state.config);
            let mut env = state.config.config.env.clone().unwrap_or_default();
            let env_keys: Vec<String> = env_pairs(&state.config)
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            for (k, v) in stage_args {
                if !env_keys.contains(k) {
                    env.push(format!("{k}={v}"));
                }
            }
            let network = match &r.network {
                None => ctx.req.network,
                Some(n) => Network::parse(n).ok_or_else(|| BuildError::Step {
                    line,
                    kind: ErrorKind::Invalid,
                    message: format!("unsupported RUN --network={n}: use default, none or host"),
                })?,
            };
            let mut mounts = Vec::new();
            let mut ssh_mounts = 0;
            for m in &r.mounts {
                let target = join_workdir(&state.config, m.target.as_deref().unwrap_or(""));
                let source = match m.kind {
                    MountType::Cache => MountSource::Cache {
                        id: m.id.clone().unwrap_or_else(|| target.clone()),
                    },
                    MountType::Tmpfs => MountSource::Tmpfs {
                        size: m.size.as_ref().and_then(|s| s.parse().ok()),
                    },
                    MountType::Bind => MountSource::Bind {
                        from: match &m.from {
                            Some(f) => Some(Box::new(from_state(ctx, f, deps).await?.0)),
                            None => None,
                        },
                        source: m.source.clone().unwrap_or_default(),
                    },
                    MountType::Secret => {
                        let Some((target, source)) =
                            crate::secrets::secret_mount(&ctx.req.secrets, m, line)?
                        else {
                            continue;
                        };
                        if let (Some(var), MountSource::Secret { data, .. }) = (&m.env, &source) {
                            env.retain(|e| !e.starts_with(&format!("{var}=")));
                            env.push(format!("{var}={}", String::from_utf8_lossy(&data.0)));
                        }
                        let Some(target) = target else {
                            continue;
                        };
                        mounts.push(RunMount {
                            source,
                            target: join_workdir(&state.config, &target),
                            readonly: true,
                        });
                        continue;
                    }
                    MountType::Ssh => {
                        let Some((target, source)) =
                            crate::secrets::ssh_mount(&ctx.req.ssh, m, ssh_mounts, line)?
                        else {
                            continue;
                        };
                        let target = join_workdir(&state.config, &target);
                        // BuildKit points SSH_AUTH_SOCK at the first agent socket.
                        if ssh_mounts == 0 {
                            env.retain(|e| !e.starts_with("SSH_AUTH_SOCK="));
                            env.push(format!("SSH_AUTH_SOCK={target}"));
                        }
                        ssh_mounts += 1;
                        mounts.push(RunMount {
                            source,
                            target,
                            readonly: true,
                        });
                        continue;
                    }
                };
                mounts.push(RunMount {
                    source,
                    target,
                    readonly: m.readonly,
                });
            }
            let req = RunRequest {
                args: args.clone(),
                env,
                user: state.config.config.user.clone().unwrap_or_default(),
                workdir: join_workdir(&state.config, ""),
                network,
                mounts,
                context: ctx.req.context.clone(),
            };
            if req.args.is_empty() {
                return Err(BuildError::Step {
                    line,
                    kind: ErrorKind::Invalid,
                    message: "No command specified: RUN [] runs the image's ENTRYPOINT and CMD, and it has neither".into(),
                });
            }
            let res = be.run(state, req, ctx.sink.clone()).await?;
            if res.exit_code != 0 {
                return Err(BuildError::RunFailed {
                    line,
                    command: args.join(" "),
                    code: res.exit_code,
                });
            }
            let mut s = with_layer(
                state,
                res.layer,
                format!("RUN {} # buildkit", args.join(" ")),
            );
            config::record_container_config(&mut s.config, Some(&args));
            Ok(s)
        }
        InstructionKind::Copy(c) | InstructionKind::Add(c) => {
            let is_add = matches!(kind, InstructionKind::Add(_));
            let inline: Vec<(String, Vec<u8>)> = c
                .sources
                .iter()
                .filter_map(|s| c.heredoc_for(s))
                .map(|d| {
                    let env = env_pairs(&state.config);
                    let body = d
                        .expanded_body(&Layered(&env, stage_args), ctx.df.escape())
                        .unwrap_or_else(|_| d.body());
                    (d.name.clone(), body.into_bytes())
                })
                .collect();
            let from = if !inline.is_empty() {
                CopyFrom::Inline(inline)
            } else if let Some(f) = &c.from {
                CopyFrom::State {
                    state: Box::new(from_state(ctx, f, deps).await?.0),
                    sources: c.sources.clone(),
                }
            } else {
                let mut all = Vec::new();
                let mut downloads = step.downloads.iter();
                for s in &c.sources {
                    if is_http_url(s) {
                        let d = downloads.next().ok_or_else(|| BuildError::Step {
                            line,
                            kind: ErrorKind::Internal,
                            message: format!("ADD {s}: the download is missing"),
                        })?;
                        all.push(d.source());
                        continue;
                    }
                    all.extend(collect(
                        &ctx.req.context,
                        s,
                        &context_opts(ctx, &c.excludes),
                    )?);
                }
                CopyFrom::Context(all)
            };
            let multi = c.sources.len() > 1 || matches!(&from, CopyFrom::Context(v) if v.len() > 1);
            let mut dest = join_workdir(&state.config, &c.dest);
            if c.dest.ends_with('/') || c.dest == "." || c.dest.ends_with("/.") {
                if !dest.ends_with('/') {
                    dest.push('/');
                }
            } else if multi {
                return Err(BuildError::Step {
                    line,
                    kind: ErrorKind::Invalid,
                    message: format!(
                        "When using {} with more than one source file, the destination must be a directory and end with a /",
                        kind.name()
                    ),
                });
            }
            let req = CopyRequest {
                from,
                dest,
                chown: c.chown.clone(),
                chmod: c
                    .chmod
                    .as_deref()
                    .map(|m| parse_chmod(m, line))
                    .transpose()?,
                extract_archives: is_add,
                excludes: c.excludes.clone(),
            };
            let layer = be.copy(state, req).await?;
            let mut text = format!("{} ", kind.name());
            if let Some(f) = &c.from {
                text.push_str(&format!("--from={f} "));
            }
            text.push_str(&format!("{} {} # buildkit", c.sources.join(" "), c.dest));
            let s = with_layer(state, layer, text);
            Ok(s)
        }
        InstructionKind::Workdir(_) => {
            let mut s = state.clone();
            let text = apply_metadata(&mut s.config, kind, line, cmd_set)?;
            let dir = s
                .config
                .config
                .working_dir
                .clone()
                .unwrap_or_else(|| "/".into());
            let user = s.config.config.user.clone().unwrap_or_default();
            let layer = be.mkdir(state, dir, user).await?;
            let has = layer.is_some();
            if let Some(l) = layer {
                s.config.rootfs.diff_ids.push(l.diff_id);
                s.layers.push(l.descriptor);
            }
            push_history(&mut s.config, text, !has, &now());
            Ok(s)
        }
        _ => {
            let mut s = state.clone();
            let text = apply_metadata(&mut s.config, kind, line, cmd_set)?;
            push_history(&mut s.config, text, true, &now());
            Ok(s)
        }
    }
}
