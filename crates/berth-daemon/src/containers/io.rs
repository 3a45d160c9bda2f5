//! Container stdio: logs (json-file, follow), attach and exec sessions over hijacked
//! connections (raw with a tty, multiplexed frames without), and `top`.

use super::Status;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_api_types::{AttachOptions, Hijacked, LogsOptions, StreamSession};

use crate::error::{DaemonError, Result};
use berth_runtime::{ExecConfig, Shim, StdioEvent, StdioStream};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{lock, new_id, Ctr, ExecRec};
use crate::engine::Engine;

mod escape;
mod logs;

use escape::{parse_detach_keys, EscapeProxy, DEFAULT_DETACH_KEYS};
use logs::{details_prefix, spawn_log_reader, Shape};

/// Clients that read the 101 answer through a buffered reader and then switch to the raw
/// socket (docker-py) lose bytes that arrive in the same segment; dockerd's first bytes come
/// later than its answer. Let the answer go out first.
const FIRST_BYTES_DELAY: Duration = Duration::from_millis(30);

/// moby's text when an exec's stdin read the detach sequence (written to the stream).
const EXEC_DETACHED: &str = "exec attach failed: error on attach stdin: read escape sequence";

/// moby's getActiveContainer/getExecConfig: an exec is created and started only in a running
/// container that is neither paused nor restarting. moby names a paused container as the
/// request did (`asked`: the name or ID at create, the full ID at start).
fn exec_allowed(r: &super::Record, asked: &str) -> Result<()> {
    if !r.running() {
        return Err(DaemonError::ContainerNotRunning(r.id.clone()));
    }
    match r.state.status {
        Status::Paused => Err(DaemonError::ContainerPaused {
            id: asked.to_string(),
            then: "exec",
        }),
        Status::Restarting => Err(DaemonError::ContainerRestarting(r.id.clone())),
        _ => Ok(()),
    }
}

/// The detach sequence for a `DetachKeys` value: the default when empty.
fn detach_keys_of(s: Option<&str>) -> Result<Vec<u8>> {
    let s = s.filter(|s| !s.is_empty()).unwrap_or(DEFAULT_DETACH_KEYS);
    parse_detach_keys(s).map_err(DaemonError::invalid)
}

/// A session that writes one error line (as stdout) and ends: moby's answer when an exec
/// could not be started after the client asked to attach.
fn message_session(raw: bool, msg: String) -> StreamSession {
    let run = move |mut io: Hijacked| -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async move {
            tokio::time::sleep(FIRST_BYTES_DELAY).await;
            let line = format!("{msg}\r\n");
            let b = if raw {
                line.into_bytes()
            } else {
                mux(1, line.as_bytes())
            };
            let _ = io.write_all(&b).await;
            let _ = io.shutdown().await;
        })
    };
    StreamSession {
        tty: raw,
        run: Box::new(run),
    }
}

/// One Docker multiplexed frame.
pub fn mux(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + data.len());
    v.extend_from_slice(&[stream, 0, 0, 0]);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// Write a log replay to the client, after [`FIRST_BYTES_DELAY`] when there is any.
async fn copy_logs(
    mut rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    io: &mut Hijacked,
) -> std::io::Result<()> {
    let mut first = true;
    while let Some(b) = rx.recv().await {
        if std::mem::take(&mut first) {
            tokio::time::sleep(FIRST_BYTES_DELAY).await;
        }
        io.write_all(&b).await?;
    }
    Ok(())
}

impl Engine {
    pub(crate) fn ctr_logs(
        &self,
        ctr: &Arc<Ctr>,
        opts: LogsOptions,
    ) -> Result<berth_api_types::LogsStream> {
        let r = ctr.snapshot();
        let tty = r.config.tty.unwrap_or(false);
        if let Some(lc) = &r.host_config.log_config {
            if lc.typ.as_deref() == Some("none") {
                return Err(DaemonError::invalid(
                    "configured logging driver does not support reading",
                ));
            }
        }
        let path = self.inner.containers.log_path(&r.id);
        let follow = opts.follow && r.running();
        let details = opts.details.then(|| {
            let none = HashMap::new();
            let log_opts = r
                .host_config
                .log_config
                .as_ref()
                .and_then(|l| l.config.as_ref());
            details_prefix(
                log_opts.unwrap_or(&none),
                r.config.labels.as_ref().unwrap_or(&none),
                r.config.env.as_deref().unwrap_or(&[]),
            )
        });
        let shape = Shape { tty, details };
        let rotated_away = berth_runtime::logs::rotated_away_marker(&path).exists();
        let rx = spawn_log_reader(path, opts, shape, follow, ctr.life.subscribe());
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|v| (Ok(Bytes::from(v)), rx))
        });
        Ok(berth_api_types::LogsStream {
            tty,
            body: Box::pin(stream),
            rotated_away,
        })
    }

    pub(crate) async fn ctr_attach(
        &self,
        ctr: &Arc<Ctr>,
        opts: AttachOptions,
    ) -> Result<StreamSession> {
        let r = ctr.snapshot();
        let tty = r.config.tty.unwrap_or(false);
        let dir = self.inner.containers.ctr_dir(&r.id);
        let stdin = opts.stdin && r.config.open_stdin.unwrap_or(false);
        let stdin_once = r.config.stdin_once.unwrap_or(false);
        // Detach keys apply to a tty's stdin only (moby's copyEscapable).
        let detach_keys = if stdin && tty {
            Some(detach_keys_of(opts.detach_keys.as_deref())?)
        } else {
            None
        };
        let stream_live = opts.stream || !opts.logs;
        let lo = LogsOptions {
            stdout: opts.stdout,
            stderr: opts.stderr,
            ..Default::default()
        };
        let log_path = self.inner.containers.log_path(&r.id);
        let readable = r
            .host_config
            .log_config
            .as_ref()
            .is_none_or(|lc| lc.typ.as_deref() != Some("none"));
        // Without a tty, logs then live output of a running container both come from its log
        // file, so no line falls between the replay and the attach or arrives twice. A tty's
        // output is not line-based (prompts), so there the attach comes first and the replay
        // second: nothing is lost, a line written in between may show twice.
        let follow_log = opts.logs && stream_live && r.running() && readable && !tty;
        let life = ctr.life.subscribe();
        let replay = opts.logs && readable;
        // Not running: wait for the next start (docker run attaches before starting).
        let pending = if !stream_live || r.running() {
            None
        } else {
            let (tx, rx) = tokio::sync::oneshot::channel();
            lock(&ctr.attach_waiters).push(tx);
            Some(rx)
        };
        self.ctr_event("attach", &r, HashMap::new());
        let p = Pump {
            raw: tty,
            stdin,
            // The shim sends only the streams asked for.
            stdout: true,
            stderr: true,
            close_stdin_on_eof: stdin_once || !tty,
            detach_keys,
            detach_message: None,
        };
        let run = move |mut io: Hijacked| -> futures::future::BoxFuture<'static, ()> {
            Box::pin(async move {
                let shape = Shape { tty, details: None };
                let logs = |follow: bool| spawn_log_reader(log_path, lo, shape, follow, life);
                if !stream_live {
                    if replay {
                        let _ = copy_logs(logs(false), &mut io).await;
                    }
                    let _ = io.shutdown().await;
                    return;
                }
                let (shim, ready) = match pending {
                    None => (Shim::new(dir), None),
                    Some(rx) => match rx.await {
                        Ok((s, ready)) => (s, Some(ready)),
                        Err(_) => return,
                    },
                };
                let (out, err) = if follow_log {
                    (false, false)
                } else {
                    (opts.stdout, opts.stderr)
                };
                let ss = match shim.attach(stdin, out, err).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(error = %e, "attach to shim");
                        let _ = io.shutdown().await;
                        return;
                    }
                };
                if follow_log {
                    tokio::time::sleep(FIRST_BYTES_DELAY).await;
                    pump(ss, io, p, Some(logs(true)), None::<fn(i64)>).await;
                    return;
                }
                if replay && copy_logs(logs(false), &mut io).await.is_err() {
                    return;
                }
                if let Some(r) = ready {
                    let _ = r.send(());
                }
                pump(ss, io, p, None, None::<fn(i64)>).await;
            })
        };
        Ok(StreamSession {
            tty,
            run: Box::new(run),
        })
    }

    pub(crate) async fn exec_create(
        &self,
        ctr: &Arc<Ctr>,
        asked: &str,
        body: berth_api_types::ExecCreateRequest,
    ) -> Result<String> {
        let r = ctr.snapshot();
        exec_allowed(&r, asked)?;
        let detach_keys = body.detach_keys;
        detach_keys_of(detach_keys.as_deref())?;
        let cfg = body.config;
        let cmd = cfg.cmd.clone().unwrap_or_default();
        if cmd.is_empty() {
            return Err(DaemonError::invalid("No exec command specified"));
        }
        let id = new_id();
        let e = ExecRec {
            id: id.clone(),
            container_id: r.id.clone(),
            cmd: cmd.clone(),
            env: cfg.env.clone().unwrap_or_default(),
            user: cfg.user.clone().unwrap_or_default(),
            working_dir: cfg.working_dir.clone().unwrap_or_default(),
            tty: cfg.tty.unwrap_or(false),
            attach_stdin: cfg.attach_stdin.unwrap_or(false),
            attach_stdout: cfg.attach_stdout.unwrap_or(false),
            attach_stderr: cfg.attach_stderr.unwrap_or(false),
            privileged: cfg.privileged.unwrap_or(false),
            detach_keys: detach_keys.unwrap_or_default(),
            ..Default::default()
        };
        lock(&self.inner.containers.execs).insert(id.clone(), Arc::new(std::sync::Mutex::new(e)));
        let mut attrs = HashMap::new();
        attrs.insert("execID".into(), id.clone());
        attrs.insert("exec_id".into(), id.clone());
        self.ctr_event(&format!("exec_create: {}", cmd.join(" ")), &r, attrs);
        Ok(id)
    }

    fn exec_get(&self, id: &str) -> Result<Arc<std::sync::Mutex<ExecRec>>> {
        lock(&self.inner.containers.execs)
            .get(id)
            .cloned()
            .ok_or_else(|| DaemonError::NoSuchExec(id.to_string()))
    }

    pub(crate) async fn exec_start(
        &self,
        exec_id: &str,
        detach: bool,
        tty_q: bool,
    ) -> Result<Option<StreamSession>> {
        let ex = self.exec_get(exec_id)?;
        let ctr_id = lock(&ex).container_id.clone();
        let ctr = self.inner.containers.get(&ctr_id)?;
        let r = ctr.snapshot();
        exec_allowed(&r, &r.id)?;
        let e = {
            let mut g = lock(&ex);
            if g.started {
                return Err(DaemonError::Conflict(format!(
                    "Error: Exec command {exec_id} has already run"
                )));
            }
            g.started = true;
            g.running = true;
            g.clone()
        };
        // moby: the process gets the exec's own tty; the *start* request's Tty decides
        // whether the stream is raw or multiplexed.
        let raw = tty_q;
        let stdin = e.attach_stdin && !detach;
        // Detach keys apply to a tty's stdin only (moby's copyEscapable).
        let detach_keys = if stdin && e.tty {
            Some(detach_keys_of(Some(&e.detach_keys))?)
        } else {
            None
        };
        let started = self.exec_spawn(&r, &e, stdin).await;
        let (pid, ss) = match started {
            Ok(v) => v,
            Err((code, msg)) => {
                {
                    let mut g = lock(&ex);
                    g.running = false;
                    g.exit_code = Some(code);
                }
                let msg = format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: {msg}: unknown"
                );
                if detach {
                    let kind = if code == 126 || code == 127 {
                        berth_api_types::ErrorKind::Invalid
                    } else {
                        berth_api_types::ErrorKind::Internal
                    };
                    return Err(DaemonError::OciRuntime { kind, message: msg });
                }
                return Ok(Some(message_session(raw, msg)));
            }
        };
        lock(&ex).pid = pid;
        let mut attrs = HashMap::new();
        attrs.insert("execID".into(), e.id.clone());
        self.ctr_event(
            &format!("exec_start: {}", e.cmd.join(" ")),
            &r,
            attrs.clone(),
        );
        let eng = self.clone();
        let ex2 = ex.clone();
        let finish = move |code: i64| {
            {
                let mut g = lock(&ex2);
                g.running = false;
                g.exit_code = Some(code);
            }
            let mut a = attrs.clone();
            a.insert("exitCode".into(), code.to_string());
            eng.ctr_event("exec_die", &r, a);
        };
        if detach {
            tokio::spawn(async move {
                let (_, _, code) = ss.collect().await.unwrap_or_default();
                finish(code.unwrap_or(-1) as i64);
            });
            return Ok(None);
        }
        let p = Pump {
            raw,
            stdin,
            stdout: e.attach_stdout,
            stderr: e.attach_stderr,
            close_stdin_on_eof: true,
            detach_keys,
            detach_message: Some(EXEC_DETACHED),
        };
        let run = move |io: Hijacked| -> futures::future::BoxFuture<'static, ()> {
            Box::pin(async move {
                tokio::time::sleep(FIRST_BYTES_DELAY).await;
                pump(ss, io, p, None, Some(finish)).await;
            })
        };
        Ok(Some(StreamSession {
            tty: raw,
            run: Box::new(run),
        }))
    }

    /// Resolve the exec's user and start it in the shim; on failure the exit code
    /// (126 cannot invoke, 127 not found) and the runtime's message.
    async fn exec_spawn(
        &self,
        r: &super::Record,
        e: &ExecRec,
        stdin: bool,
    ) -> Result<(i32, StdioStream), (i64, String)> {
        let user = if e.user.is_empty() {
            None
        } else {
            let rootfs = self
                .inner
                .raw_store
                .as_ref()
                .and_then(|s| s.rw_layer(&r.id).ok())
                .map(|l| l.merged)
                .unwrap_or_default();
            Some(
                berth_runtime::user::resolve_in_rootfs(&rootfs, &e.user, &[])
                    .map_err(|err| (126, err.to_string()))?,
            )
        };
        let cfg = ExecConfig {
            args: e.cmd.clone(),
            env: e.env.clone(),
            cwd: e.working_dir.clone(),
            user,
            tty: e.tty,
            stdin,
            privileged: e.privileged,
        };
        let shim = Shim::new(self.inner.containers.ctr_dir(&r.id));
        shim.exec(&cfg).await.map_err(|err| match &err {
            berth_runtime::Error::Exec { exit_code, .. } => (*exit_code as i64, err.to_string()),
            _ => (126, err.to_string()),
        })
    }

    pub(crate) fn exec_inspect(&self, exec_id: &str) -> Result<berth_api_types::ExecInspect> {
        let ex = self.exec_get(exec_id)?;
        let e = lock(&ex).clone();
        let (ep, args) = e
            .cmd
            .split_first()
            .map(|(a, b)| (a.clone(), b.to_vec()))
            .unwrap_or_default();
        Ok(berth_api_types::ExecInspect {
            id: e.id,
            running: e.running,
            exit_code: e.exit_code,
            process_config: berth_api_types::container_types::ExecProcessConfig {
                tty: e.tty,
                entrypoint: ep,
                arguments: args,
                privileged: e.privileged,
                user: e.user,
            },
            open_stdin: e.attach_stdin,
            open_stderr: e.attach_stderr,
            open_stdout: e.attach_stdout,
            can_remove: false,
            container_id: e.container_id,
            detach_keys: String::new(),
            pid: e.pid,
        })
    }

    pub(crate) async fn exec_resize(&self, exec_id: &str, h: u16, w: u16) -> Result<()> {
        let ex = self.exec_get(exec_id)?;
        let e = lock(&ex).clone();
        if !e.tty {
            // As for containers: no terminal, nothing to size, 200.
            return Ok(());
        }
        Shim::new(self.inner.containers.ctr_dir(&e.container_id))
            .resize(h, w, Some(e.pid))
            .await
            .map_err(|err| DaemonError::runtime(format!("resize exec {exec_id}"), err))
    }

    pub(crate) async fn ctr_top(
        &self,
        ctr: &Arc<Ctr>,
        ps_args: &str,
    ) -> Result<berth_api_types::models::ContainerTopResponse> {
        let r = ctr.snapshot();
        if !r.running() {
            return Err(DaemonError::ContainerNotRunning(r.id.clone()));
        }
        let pids = container_pids(&r.id, r.host_config.cgroup_parent.as_deref());
        let args: Vec<String> = if ps_args.is_empty() {
            vec!["-ef".into()]
        } else {
            ps_args.split_whitespace().map(String::from).collect()
        };
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|e| DaemonError::io("run ps", e))?;
        if !out.status.success() {
            return Err(DaemonError::Internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap_or("")
            .split_whitespace()
            .map(String::from)
            .collect();
        let pid_col = header
            .iter()
            .position(|h| h == "PID")
            .ok_or_else(|| DaemonError::invalid("Couldn't find PID field in ps output"))?;
        let ncol = header.len();
        let mut procs = vec![];
        for l in lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < ncol {
                continue;
            }
            let Ok(pid) = f[pid_col].parse::<i32>() else {
                continue;
            };
            if !pids.contains(&pid) {
                continue;
            }
            let mut row: Vec<String> = f[..ncol - 1].iter().map(|s| s.to_string()).collect();
            row.push(f[ncol - 1..].join(" "));
            procs.push(row);
        }
        Ok(berth_api_types::models::ContainerTopResponse {
            titles: Some(header),
            processes: Some(procs),
        })
    }
}

/// PIDs in the container's cgroup (any v1 controller, or v2).
pub fn container_pids(id: &str, parent: Option<&str>) -> Vec<i32> {
    let parent = parent.filter(|p| !p.is_empty()).unwrap_or("berth");
    let rel = format!("{}/{id}", parent.trim_matches('/'));
    let root = Path::new(berth_runtime::cgroups::CGROUP_ROOT);
    for c in ["pids", "memory", "cpu,cpuacct", "unified", ""] {
        let p = root.join(c).join(&rel).join("cgroup.procs");
        if let Ok(t) = std::fs::read_to_string(&p) {
            return t.lines().filter_map(|l| l.trim().parse().ok()).collect();
        }
    }
    vec![]
}

/// How [`pump`] copies one session.
struct Pump {
    /// Raw bytes (a tty stream) rather than multiplexed frames.
    raw: bool,
    /// Forward the client's input to the process.
    stdin: bool,
    /// Forward the process's stdout / stderr (an exec's AttachStdout / AttachStderr).
    stdout: bool,
    stderr: bool,
    /// Close the process's stdin when the client's input ends.
    close_stdin_on_eof: bool,
    /// Detach on this input sequence.
    detach_keys: Option<Vec<u8>>,
    /// Written (as stdout) to the client when it detaches.
    detach_message: Option<&'static str>,
}

fn frame(raw: bool, stream: u8, d: &[u8]) -> Vec<u8> {
    if raw {
        d.to_vec()
    } else {
        mux(stream, d)
    }
}

/// Copy between the shim's stdio stream and the client until the process exits or the
/// client detaches; `on_exit` gets the exit code (exec) before the connection is closed,
/// or, after a detach, when the process ends later.
async fn pump<F: FnOnce(i64) + Send + 'static>(
    mut ss: StdioStream,
    io: Hijacked,
    p: Pump,
    mut logs: Option<tokio::sync::mpsc::Receiver<Vec<u8>>>,
    mut on_exit: Option<F>,
) {
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut stdin_open = p.stdin;
    let mut buf = vec![0u8; 32 * 1024];
    let mut escape = p.detach_keys.map(EscapeProxy::new);
    let mut detached = false;
    let mut ended = false;
    let from_log = logs.is_some();
    let mut ss_open = true;
    loop {
        tokio::select! {
            // Output followed from the log file (already framed); ends after the exit.
            b = async { logs.as_mut().expect("guarded").recv().await }, if logs.is_some() => match b {
                Some(b) => {
                    if wr.write_all(&b).await.is_err() { break; }
                    let _ = wr.flush().await;
                }
                None => { ended = true; break; }
            },
            ev = ss.next(), if ss_open => match ev {
                Ok(StdioEvent::Stdout(d)) if p.stdout => {
                    if wr.write_all(&frame(p.raw, 1, &d)).await.is_err() { break; }
                    let _ = wr.flush().await;
                }
                Ok(StdioEvent::Stderr(d)) if p.stderr => {
                    if wr.write_all(&frame(p.raw, 2, &d)).await.is_err() { break; }
                    let _ = wr.flush().await;
                }
                Ok(StdioEvent::Stdout(_) | StdioEvent::Stderr(_)) => {}
                Ok(StdioEvent::Exit(c)) => {
                    if let Some(f) = on_exit.take() { f(c as i64); }
                    if from_log { ss_open = false; stdin_open = false; continue; }
                    break;
                }
                Ok(StdioEvent::Closed) | Err(_) => {
                    if from_log { ss_open = false; stdin_open = false; continue; }
                    ended = true;
                    break;
                }
            },
            n = rd.read(&mut buf), if stdin_open => match n {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    if p.close_stdin_on_eof {
                        let _ = ss.close_stdin().await;
                    }
                }
                Ok(n) => {
                    let (data, detach) = match &mut escape {
                        Some(e) => {
                            let f = e.feed(&buf[..n]);
                            (f.forward, f.detach)
                        }
                        None => (buf[..n].to_vec(), false),
                    };
                    if !data.is_empty() && ss.write_stdin(&data).await.is_err() {
                        break;
                    }
                    if detach {
                        detached = true;
                        break;
                    }
                }
            },
        }
    }
    if detached {
        if let Some(m) = p.detach_message {
            let _ = wr
                .write_all(&frame(p.raw, 1, format!("{m}\r\n").as_bytes()))
                .await;
        }
    }
    if let Some(f) = on_exit.take() {
        if ended {
            // Stream closed without an exit frame (the shim went away).
            f(-1);
        } else {
            // Detached, or the client went away: the process runs on and its exit is
            // still recorded.
            tokio::spawn(async move {
                let code = loop {
                    match ss.next().await {
                        Ok(StdioEvent::Exit(c)) => break c as i64,
                        Ok(StdioEvent::Closed) | Err(_) => break -1,
                        Ok(_) => {}
                    }
                };
                f(code);
            });
        }
    }
    let _ = wr.shutdown().await;
}
