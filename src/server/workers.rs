//! Thread-per-core serving of the MCP port.
//!
//! `workers` threads each run a current-thread tokio runtime with their own `SO_REUSEPORT`
//! listener on the MCP address; the kernel spreads new connections over them. A connection,
//! the tasks its requests spawn and its upstream connections (one pool per thread, see
//! `upstream/http.rs`) stay on the thread that accepted it, so serving a request never
//! wakes a second thread. Measured in BENCHMARKS.md: tokio's work-stealing runtime spent
//! 1.5-1.8 context switches per request on cross-thread wake-ups.
//!
//! What is not per connection stays on the main runtime: the admin listener, file
//! watchers, state followers, stdio children. The connection limit is one semaphore for
//! every worker.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use super::listener;
use super::tls::ReloadingConfig;
use crate::gateway::Gateway;

/// Pending connections each listener's kernel queue holds (tokio's default too).
const BACKLOG: i32 = 1024;

/// What one serving worker needs. Everything but `index` is shared by all of them.
#[derive(Clone)]
pub struct Worker {
    pub index: usize,
    pub gw: Arc<Gateway>,
    pub tls: Option<ReloadingConfig>,
    /// `limits.max_connections`, counted across every worker.
    pub permits: Arc<Semaphore>,
    pub shutdown: CancellationToken,
}

/// Binds `count` listeners to `addr`, all with `SO_REUSEPORT`. With port 0 the first
/// picks the port and the others join it.
pub fn bind(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<std::net::TcpListener>> {
    if addr.port() != 0 {
        refuse_if_taken(addr)?;
    }
    let first = reuseport_listener(addr)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count {
        listeners.push(reuseport_listener(addr)?);
    }
    Ok(listeners)
}

/// `SO_REUSEPORT` would let this gateway share a port another process (of the same user)
/// already listens on, silently splitting its connections; bind it once without the option
/// first, so a taken port is refused as it would be with a single listener.
fn refuse_if_taken(addr: SocketAddr) -> anyhow::Result<()> {
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into()).with_context(|| format!("binding {addr}"))?;
    Ok(())
}

fn reuseport_listener(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into()).with_context(|| format!("binding {addr}"))?;
    socket.listen(BACKLOG).with_context(|| format!("listening on {addr}"))?;
    Ok(socket.into())
}

/// Serves one listener per worker thread until `shutdown` fires and every worker has
/// drained. A worker that stops before that (a panic in its accept loop) would leave
/// part of the port unserved while the pod still looks alive, so it is an error: the
/// others drain as on SIGTERM and the error is returned, for the process to exit non-zero
/// and be restarted.
pub async fn serve(
    listeners: Vec<std::net::TcpListener>,
    gw: Arc<Gateway>,
    tls: Option<ReloadingConfig>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(gw.config.limits.max_connections));
    let template = Worker { index: 0, gw, tls, permits, shutdown };
    let stop = || template.gw.begin_drain(&template.shutdown);
    let (ended_tx, ended) = mpsc::unbounded_channel();
    let mut threads = Vec::with_capacity(listeners.len());
    let mut started = Ok(());
    for (index, listener) in listeners.into_iter().enumerate() {
        let worker = Worker { index, ..template.clone() };
        let ended = Ended { index, tx: ended_tx.clone() };
        match std::thread::Builder::new()
            .name(format!("forge-worker-{index}"))
            .spawn(move || run_worker(listener, worker, ended))
        {
            Ok(thread) => threads.push(thread),
            Err(e) => {
                stop();
                started = Err(anyhow::Error::new(e).context("starting a serving worker thread"));
                break;
            }
        }
    }
    drop(ended_tx);
    let served = supervise(threads, ended, &template.shutdown, stop).await;
    started.and(served)
}

fn run_worker(listener: std::net::TcpListener, worker: Worker, ended: Ended) -> anyhow::Result<()> {
    // Dropped last, after the runtime: the worker's tasks are gone when it reports.
    let _ended = ended;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a serving worker's runtime")?;
    runtime.block_on(async {
        // Registered with this thread's reactor, so only this thread polls it.
        let listener = tokio::net::TcpListener::from_std(listener).context("registering the listener")?;
        tracing::debug!(worker = worker.index, "serving worker started");
        listener::serve(listener, worker).await;
        Ok(())
    })
}

/// Waits until every worker thread has ended; the first to end before `shutdown` calls
/// `stop` (which cancels it) and is returned as the error.
async fn supervise(
    threads: Vec<std::thread::JoinHandle<anyhow::Result<()>>>,
    mut ended: mpsc::UnboundedReceiver<usize>,
    shutdown: &CancellationToken,
    stop: impl Fn(),
) -> anyhow::Result<()> {
    let mut failure = None;
    while let Some(index) = ended.recv().await {
        if !shutdown.is_cancelled() {
            tracing::error!(worker = index, "a serving worker stopped unexpectedly; draining the others and exiting");
            failure.get_or_insert(index);
            stop();
        }
    }
    let Some(index) = failure else { return Ok(()) };
    // Every thread has reported its end, so joining does not wait.
    let why = match threads.into_iter().nth(index).map(std::thread::JoinHandle::join) {
        Some(Ok(Err(e))) => format!("{e:#}"),
        Some(Err(panic)) => panic_message(&*panic),
        _ => "its accept loop returned".to_string(),
    };
    anyhow::bail!("serving worker {index} stopped: {why}")
}

/// Tells the supervisor a worker thread ended, however it ended (also while unwinding).
struct Ended {
    index: usize,
    tx: mpsc::UnboundedSender<usize>,
}

impl Drop for Ended {
    fn drop(&mut self) {
        let _ = self.tx.send(self.index);
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
    format!("panicked: {}", text.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn spawn(
        index: usize,
        tx: &mpsc::UnboundedSender<usize>,
        body: impl FnOnce() -> anyhow::Result<()> + Send + 'static,
    ) -> std::thread::JoinHandle<anyhow::Result<()>> {
        let ended = Ended { index, tx: tx.clone() };
        std::thread::spawn(move || {
            let _ended = ended;
            body()
        })
    }

    #[tokio::test]
    async fn a_worker_that_panics_stops_the_others_and_is_the_error() {
        let shutdown = CancellationToken::new();
        let (tx, rx) = mpsc::unbounded_channel();
        let waiting = shutdown.clone();
        let healthy = spawn(0, &tx, move || {
            while !waiting.is_cancelled() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Ok(())
        });
        let broken = spawn(1, &tx, || panic!("accept loop broke"));
        drop(tx);
        let stops = AtomicUsize::new(0);
        let stop = || {
            stops.fetch_add(1, Ordering::SeqCst);
            shutdown.cancel();
        };
        let e = supervise(vec![healthy, broken], rx, &shutdown, stop).await.unwrap_err().to_string();
        assert_eq!(e, "serving worker 1 stopped: panicked: accept loop broke");
        assert_eq!(stops.load(Ordering::SeqCst), 1, "stopped once; the healthy worker then ended as on drain");
    }

    #[tokio::test]
    async fn workers_ending_on_shutdown_are_not_an_error() {
        let shutdown = CancellationToken::new();
        let (tx, rx) = mpsc::unbounded_channel();
        let threads = (0..3)
            .map(|i| {
                let waiting = shutdown.clone();
                spawn(i, &tx, move || {
                    while !waiting.is_cancelled() {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    Ok(())
                })
            })
            .collect();
        drop(tx);
        shutdown.cancel();
        supervise(threads, rx, &shutdown, || panic!("not stopped by the supervisor")).await.unwrap();
    }

    #[test]
    fn listeners_share_a_port_picked_by_the_first() {
        let listeners = bind("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let port = listeners[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert!(listeners.iter().all(|l| l.local_addr().unwrap().port() == port));
        // A taken port is refused, as with one listener.
        let e = bind(listeners[0].local_addr().unwrap(), 2).unwrap_err();
        assert!(format!("{e:#}").contains("binding 127.0.0.1"), "{e:#}");
    }
}
