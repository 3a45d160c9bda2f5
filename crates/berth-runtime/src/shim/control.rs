//! The shim's control requests on `shim.sock`: start, state, wait, kill, pause/resume,
//! update, resize, attach and exec.

use super::*;

impl Shim {
    pub(super) fn request(&mut self, i: usize, req: Request) {
        let id = self.cfg.spec.id.clone();
        let mut since = 0;
        let resp = match req {
            Request::Start => match self.pending.take() {
                Some(mut ct) => match timed("shim: libcontainer start", || {
                    since = errlog::mark(&self.dir);
                    ct.start()
                }) {
                    Ok(()) => {
                        self.started_at =
                            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                        drop(ct);
                        sys::shed_start_memory();
                        Response::Ok
                    }
                    Err(e) => err_resp(errlog::explain(
                        &format!("start {id}: {e}"),
                        &self.dir,
                        since,
                    )),
                },
                None => err_resp(format!("container {id} is already started")),
            },
            Request::State => Response::State(StateInfo {
                id: id.clone(),
                pid: self.pid,
                shim_pid: std::process::id() as i32,
                status: self.status(),
                started_at: self.started_at.clone(),
                tty: self.cfg.spec.tty,
            }),
            Request::Wait => {
                if let Some(x) = &self.exit {
                    Response::Exited(x.clone())
                } else {
                    self.clients[i].role = Some(Role::Waiter);
                    return;
                }
            }
            Request::Kill { signal } => {
                if self.exit.is_some() {
                    Response::Error {
                        message: format!("container {id} is not running"),
                        exit_code: 125,
                    }
                } else {
                    match nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(self.pid),
                        nix::sys::signal::Signal::try_from(signal).ok(),
                    ) {
                        Ok(()) => Response::Ok,
                        Err(e) => err_resp(format!("kill {id}: {e}")),
                    }
                }
            }
            Request::Pause | Request::Resume => {
                let pause = matches!(req, Request::Pause);
                match Container::load(self.cfg.state_root.join(&id)) {
                    Ok(mut ct) => {
                        let r = if pause { ct.pause() } else { ct.resume() };
                        match r {
                            Ok(()) => Response::Ok,
                            Err(e) => err_resp(format!(
                                "{} {id}: {e}",
                                if pause { "pause" } else { "resume" }
                            )),
                        }
                    }
                    Err(e) => err_resp(format!("load container {id}: {e}")),
                }
            }
            Request::Update { resources } => match self.update(&resources) {
                Ok(()) => Response::Ok,
                Err(e) => err_resp(e.to_string()),
            },
            Request::Resize {
                height,
                width,
                exec_pid,
            } => {
                let fd = match exec_pid {
                    None => match &self.stdio {
                        Stdio::Pty { master } => master.as_ref().map(|m| m.as_raw_fd()),
                        _ => None,
                    },
                    Some(p) => self.execs.get(&p).and_then(|e| match &e.stdio {
                        Stdio::Pty { master } => master.as_ref().map(|m| m.as_raw_fd()),
                        _ => None,
                    }),
                };
                match fd {
                    Some(fd) => match sys::resize(fd, height, width) {
                        Ok(()) => Response::Ok,
                        Err(e) => err_resp(format!("resize: {e}")),
                    },
                    None => err_resp("no tty to resize".into()),
                }
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                self.clients[i].role = Some(Role::Attach {
                    stdin,
                    stdout,
                    stderr,
                });
                Response::Ok
            }
            Request::Exec(ec) => match crate::exec::start(&self.cfg, &ec) {
                Ok((pid, stdio)) => {
                    let stdio = match finish_stdio(stdio.0, stdio.1) {
                        Ok(s) => s,
                        Err(e) => {
                            reply(&mut self.clients[i], &err_resp(e.to_string()));
                            return;
                        }
                    };
                    match sys::pidfd_open(pid) {
                        Ok(fd) => {
                            self.exec_pidfds.insert(pid, fd);
                        }
                        Err(e) => tracing::warn!("pidfd_open exec {pid}: {e}"),
                    }
                    self.execs.insert(
                        pid,
                        ExecProc {
                            stdio,
                            stdin_buf: Vec::new(),
                        },
                    );
                    self.clients[i].role = Some(Role::Exec { pid });
                    Response::ExecStarted { pid }
                }
                Err(e) => Response::Error {
                    message: e.to_string(),
                    exit_code: e.exit_code(),
                },
            },
        };
        let c = &mut self.clients[i];
        reply(c, &resp);
        if c.role.is_none() {
            c.role = Some(Role::Done);
        }
    }

    fn status(&self) -> String {
        let frozen = Container::load(self.cfg.state_root.join(&self.cfg.spec.id))
            .map(|c| c.status() == libcontainer::container::ContainerStatus::Paused)
            .unwrap_or(false);
        if self.exit.is_some() {
            "exited".into()
        } else if self.pending.is_some() {
            "created".into()
        } else if frozen {
            "paused".into()
        } else {
            "running".into()
        }
    }

    fn update(&self, r: &spec::Resources) -> Result<()> {
        use libcgroups::common::{CgroupConfig, CgroupManager, ControllerOpt};
        let id = &self.cfg.spec.id;
        let res = spec::resources_to_oci(r)?;
        let mgr = libcgroups::common::create_cgroup_manager(CgroupConfig {
            cgroup_path: spec::cgroup_path(self.cfg.spec.cgroup_parent.as_deref(), id).into(),
            systemd_cgroup: false,
            container_name: id.clone(),
        })
        .map_err(|e| rt_err(id, e))?;
        mgr.apply(&ControllerOpt {
            resources: &res,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        })
        .map_err(|e| rt_err(id, e))
    }
}
