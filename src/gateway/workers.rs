//! The gateway's threads: one single-threaded tokio runtime per core, so that a request is
//! accepted, proxied and answered on one thread (thread-per-core, like nginx's workers).
//!
//! Every address a listener serves is bound once per worker with `SO_REUSEPORT`; the kernel
//! spreads new connections over those sockets and each worker accepts on its own. A client
//! connection, the backend connections it opens and the tasks hyper spawns for them all run
//! on the worker that accepted it, and the backend connection pools are kept per worker
//! ([`current`] is the pool index), so no request hands work to another thread: on the L7
//! path that hand-off and its wake-ups cost more than the proxying itself.
//!
//! Must not: run control-plane work (binding, endpoint changes and the termination barrier
//! run on the caller's threads; only accept loops and what they spawn run here), or block a
//! worker thread.

use std::cell::Cell;
use std::num::NonZeroUsize;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    /// This thread's worker index; 0 on threads that are no worker.
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// The index of the worker running the calling task (0 outside the gateway's workers): the
/// backend connection pool to use.
pub(crate) fn current() -> usize {
    INDEX.with(Cell::get)
}

/// How many workers a gateway runs when its configuration says 0: one per core.
pub(crate) fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// The running workers. Dropping them stops their threads (without waiting).
pub(crate) struct Workers {
    workers: Vec<Worker>,
}

struct Worker {
    handle: Handle,
    /// Dropping or sending stops the thread's runtime.
    stop: Option<oneshot::Sender<()>>,
    /// Resolves once the thread's runtime has been dropped.
    done: Option<oneshot::Receiver<()>>,
}

impl Workers {
    /// Starts `count` worker threads (at least one), each with its own current-thread runtime.
    pub(crate) fn start(count: usize) -> std::io::Result<Workers> {
        let mut workers = Vec::new();
        for index in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let (finished, done) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("gateway-{index}"))
                .spawn(move || {
                    INDEX.with(|i| i.set(index));
                    // Why ignored: a dropped sender stops the worker just as a sent value does.
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                    drop(runtime);
                    // Why ignored: nobody waiting for the thread is fine.
                    let _ = finished.send(());
                })?;
            workers.push(Worker {
                handle,
                stop: Some(stop),
                done: Some(done),
            });
        }
        Ok(Workers { workers })
    }

    /// The runtime handles of the workers, by index.
    pub(crate) fn handles(&self) -> impl Iterator<Item = &Handle> {
        self.workers.iter().map(|w| &w.handle)
    }

    /// Stops every worker's runtime (dropping the tasks left on it) and waits until their
    /// threads have let go of them.
    pub(crate) async fn stop(&mut self) {
        for worker in &mut self.workers {
            worker.stop.take();
        }
        for worker in &mut self.workers {
            if let Some(done) = worker.done.take() {
                // Why ignored: a thread that ended without saying so has stopped too.
                let _ = done.await;
            }
        }
    }
}
