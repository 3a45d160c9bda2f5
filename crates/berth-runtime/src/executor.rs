//! The workload executor: checks that the container's user may run its command (libcontainer's
//! default validation looks only at the "other" x bit, refusing 0750 root-owned entrypoints
//! even to root), then libcontainer's default exec after restoring default signal dispositions
//! (the shim, like every Rust binary, ignores SIGPIPE, and ignored signals survive execve — a
//! container must start with none ignored, as under Docker).

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;

use crate::user::User;

#[derive(Clone)]
pub(crate) struct BerthExecutor;

impl Executor for BerthExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        reset_signals();
        DefaultExecutor {}.exec(spec)
    }

    /// Runs inside the container (after pivot_root, as its user): the command must resolve
    /// through the process's PATH to a file the process's uid/gids may execute.
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let Some(args) = spec.process().as_ref().and_then(|p| p.args().as_ref()) else {
            return Err(ExecutorValidationError::ArgValidationError(
                "the container has no command".into(),
            ));
        };
        let Some(cmd) = args.first() else {
            return Err(ExecutorValidationError::ArgValidationError(
                "the container has no command".into(),
            ));
        };
        let path = crate::spec::path_of(spec);
        crate::pathutil::find_executable(std::path::Path::new("/"), cmd, &path, &spec_user(spec))
            .map(|_| ())
            .map_err(|e| ExecutorValidationError::ArgValidationError(e.to_string()))
    }
}

/// The identity the spec's process runs as.
pub(crate) fn spec_user(spec: &Spec) -> User {
    let Some(u) = spec.process().as_ref().map(|p| p.user()) else {
        return User::default();
    };
    User {
        uid: u.uid(),
        gid: u.gid(),
        additional_gids: u.additional_gids().clone().unwrap_or_default(),
        home: None,
    }
}

/// The kernel's `struct sigaction` layout on x86_64 and aarch64.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Every catchable signal back to SIG_DFL, none blocked. Uses the raw syscall so signals glibc
/// reserves for itself (32, 33) are reset too.
fn reset_signals() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let act = KernelSigaction {
            handler: libc::SIG_DFL,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: rt_sigaction reads `act` (valid for the call) and writes no old action; the
        // last argument is the kernel sigset size (8 bytes). Errors are ignored.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &act as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
    // SAFETY: an empty set is a valid argument; the old mask is not needed.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}
