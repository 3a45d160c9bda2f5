//! Blocking file work (fsync, rename, mount syscalls) from synchronous code that async handlers
//! call, without stalling the tokio worker they run on.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Run `f`, which blocks (record saves with their fsyncs, unmounts), without stalling the
/// async worker it is called on: on a multi-thread runtime the worker hands its other tasks to
/// another thread for the duration (`block_in_place`), so they keep running; elsewhere
/// (current-thread runtimes, plain threads, the blocking pool) `f` simply runs. For callers
/// with a synchronous signature; async callers with owned data can use `spawn_blocking`.
pub(crate) fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::off_worker;
    use std::sync::mpsc;
    use std::time::Duration;

    /// With one worker, a task blocked in `off_worker` must not keep another task from
    /// running. Before, the save ran inline on the worker: the other task never ran and the
    /// blocked one gave up waiting for it.
    #[test]
    fn other_tasks_run_while_one_blocks() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, rx) = mpsc::channel::<()>();
            let (started_tx, started_rx) = tokio::sync::oneshot::channel();
            let blocked = tokio::spawn(async move {
                started_tx.send(()).unwrap();
                // The bound only turns a stalled worker into a failure instead of a hang.
                off_worker(|| rx.recv_timeout(Duration::from_secs(60)))
            });
            started_rx.await.unwrap();
            // Spawned from outside the worker: only the (one) worker can run it.
            let other = tokio::spawn(async move { tx.send(()).unwrap() });
            assert!(
                blocked.await.unwrap().is_ok(),
                "the other task never ran while one was blocked"
            );
            other.await.unwrap();
        });
    }

    #[test]
    fn runs_inline_where_the_worker_cannot_be_handed_off() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(async { off_worker(|| 7) }), 7);
        assert_eq!(off_worker(|| 8), 8);
        let mt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let v = mt.block_on(async { tokio::task::spawn_blocking(|| off_worker(|| 9)).await });
        assert_eq!(v.unwrap(), 9);
    }
}
