//! The HTTP/2 connection of one probe, run inside the probe's own future.
//!
//! hyper's HTTP/2 client hands its background futures (the connection, each request's
//! dispatch and body) to an executor. [`Tasks`] is that executor: it queues them and polls them
//! only while the probe polls it, so dropping the probe's future drops the connection and its
//! socket at once; nothing is spawned on the runtime.
//!
//! [`PrefaceWatch`] tells when the server's HTTP/2 preface (its first SETTINGS frame) arrived,
//! which is when grpc-go considers a connection ready.

use std::future::{Future, poll_fn};
use std::io;
use std::mem;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// A future hyper asked to run.
type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Futures handed to the executor, waiting to be picked up by their [`Tasks`].
#[derive(Default)]
struct Queue {
    /// Handed over and not yet polled.
    spawned: Vec<Task>,
    /// Wakes the probe's task when something is handed over.
    waker: Option<Waker>,
    /// The [`Tasks`] is gone: new futures are dropped at once.
    closed: bool,
}

/// The background futures of one connection, polled by [`Tasks::drive`].
pub(super) struct Tasks {
    /// Shared with every [`LocalExecutor`] handed to hyper.
    queue: Arc<Mutex<Queue>>,
    /// The futures being run.
    running: FuturesUnordered<Task>,
}

/// The executor given to hyper: hands futures to the [`Tasks`] it came from.
#[derive(Clone)]
pub(super) struct LocalExecutor {
    queue: Arc<Mutex<Queue>>,
}

impl Tasks {
    pub(super) fn new() -> Tasks {
        Tasks {
            queue: Arc::default(),
            running: FuturesUnordered::new(),
        }
    }

    /// An executor whose futures run in these tasks.
    pub(super) fn executor(&self) -> LocalExecutor {
        LocalExecutor {
            queue: self.queue.clone(),
        }
    }

    /// Adds a future of our own (the connection's dispatcher).
    pub(super) fn push(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.running.push(Box::pin(task));
    }

    /// Polls `fut` to completion, running the tasks meanwhile in the same task.
    pub(super) async fn drive<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = pin!(fut);
        poll_fn(|cx| {
            if let Poll::Ready(output) = fut.as_mut().poll(cx) {
                return Poll::Ready(output);
            }
            self.poll_tasks(cx);
            // A task that made `fut` ready woke this same task, so `fut` is polled again.
            Poll::Pending
        })
        .await
    }

    /// Polls every task that can make progress, including those handed over meanwhile.
    fn poll_tasks(&mut self, cx: &mut Context<'_>) {
        loop {
            let spawned = {
                let mut queue = lock(&self.queue);
                queue.waker = Some(cx.waker().clone());
                mem::take(&mut queue.spawned)
            };
            self.running.extend(spawned);
            // Ready(None) (no task left) and Pending both end the round.
            while let Poll::Ready(Some(())) = self.running.poll_next_unpin(cx) {}
            if lock(&self.queue).spawned.is_empty() {
                return;
            }
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        // The queued futures hold executors, which hold the queue: drop them here to break
        // that cycle. They are dropped outside the lock, as their drop may hand over more.
        let running = mem::take(&mut self.running);
        drop(running);
        let spawned = {
            let mut queue = lock(&self.queue);
            queue.closed = true;
            queue.waker = None;
            mem::take(&mut queue.spawned)
        };
        drop(spawned);
    }
}

impl<F> hyper::rt::Executor<F> for LocalExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, fut: F) {
        let mut queue = lock(&self.queue);
        if queue.closed {
            drop(queue);
            drop(fut);
            return;
        }
        queue.spawned.push(Box::pin(fut));
        if let Some(waker) = queue.waker.take() {
            waker.wake();
        }
    }
}

/// Locks the queue; a panic while it was held leaves it consistent (every change is one push
/// or take), so poisoning is ignored.
fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Length of an HTTP/2 frame header.
const FRAME_HEADER_BYTES: usize = 9;

/// HTTP/2 frame type SETTINGS.
const SETTINGS: u8 = 0x4;

/// A TCP stream that reports, once, whether the server's first bytes are an HTTP/2 SETTINGS
/// frame header (the server preface): `Ok` if so, else why not.
pub(super) struct PrefaceWatch {
    stream: TcpStream,
    /// The first bytes read, up to a frame header.
    header: Vec<u8>,
    /// Taken when the verdict is sent.
    verdict: Option<oneshot::Sender<Result<(), String>>>,
}

impl PrefaceWatch {
    pub(super) fn new(stream: TcpStream, verdict: oneshot::Sender<Result<(), String>>) -> Self {
        PrefaceWatch {
            stream,
            header: Vec::with_capacity(FRAME_HEADER_BYTES),
            verdict: Some(verdict),
        }
    }

    /// Looks at the bytes just read (none: end of stream).
    fn observe(&mut self, read: &[u8]) {
        let Some(verdict) = self.verdict.take() else {
            return;
        };
        if read.is_empty() {
            // Why the result is ignored: the receiver is gone only when the attempt was
            // abandoned, and then nobody needs the verdict.
            let _ = verdict.send(Err(
                "connection closed before server preface received".to_owned()
            ));
            return;
        }
        let wanted = FRAME_HEADER_BYTES - self.header.len();
        self.header
            .extend_from_slice(&read[..wanted.min(read.len())]);
        if self.header.len() < FRAME_HEADER_BYTES {
            self.verdict = Some(verdict);
            return;
        }
        let is_settings = self.header[3] == SETTINGS && self.header[4] & 0x1 == 0;
        let result = if is_settings {
            Ok(())
        } else {
            Err(format!(
                "first frame received from server is not SETTINGS (bytes {:02x?}); \
                 the server does not speak HTTP/2 in plain text",
                self.header
            ))
        };
        // Why the result is ignored: as above.
        let _ = verdict.send(result);
    }
}

impl AsyncRead for PrefaceWatch {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        match &result {
            Poll::Ready(Ok(())) => this.observe(&buf.filled()[before..]),
            Poll::Ready(Err(error)) => {
                if let Some(verdict) = this.verdict.take() {
                    // Why the result is ignored: as in `observe`.
                    let _ = verdict.send(Err(format!("read: {error}")));
                }
            }
            Poll::Pending => {}
        }
        result
    }
}

impl AsyncWrite for PrefaceWatch {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
