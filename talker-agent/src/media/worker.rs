//! The media worker process as the agent runs it: `talker-media`, which runs every GStreamer
//! pipeline. It is started when a call first needs media and told to exit (its stdin closed)
//! as soon as no session or conference is left, so an idle agent holds no media memory. One
//! worker serves the whole agent process; requests from several calls are in flight at once
//! (what they say is the `splitdial-media` contract; the handles that send them are in
//! [`super::remote`]).
//!
//! If the worker dies, the requests waiting on it fail, the sessions it ran are gone (their
//! calls keep their signalling and end normally), and the next call starts a new worker.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Interest};
use tokio::net::UnixStream;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use splitdial_media::MediaError;
use splitdial_media::lines::{Line, LineBuffer, MAX_LINE_BYTES, encode_line};
use splitdial_media::passing::{request_socket_pair, send_with_sockets};
use splitdial_media::protocol::{Operation, Outcome, Reply, Request};

/// The worker's file name, installed next to `talker-agent`.
pub const WORKER_BINARY: &str = "talker-media";
/// Overrides where the worker binary is (a full path), e.g. for packaging.
pub const WORKER_PATH_ENV: &str = "TALKER_MEDIA_WORKER";

/// How long a request that builds or tears down pipelines may take (a first start scans the
/// GStreamer registry; a stop drains for up to 2 s).
pub(super) const SLOW_REQUEST: Duration = Duration::from_secs(30);
/// How long a statistics request may take.
pub(super) const STATS_REQUEST: Duration = Duration::from_secs(5);
/// How long [`MediaWorker::shut_down`] waits for the worker to exit once told to.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// Where the worker binary is: [`WORKER_PATH_ENV`], else next to the running executable
/// (for a test binary in `target/*/deps`, the directory above, where cargo puts binaries).
pub fn worker_binary() -> Result<PathBuf, MediaError> {
    if let Some(path) = std::env::var_os(WORKER_PATH_ENV) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()
        .map_err(|e| MediaError::Worker(format!("cannot find the running executable: {e}")))?;
    let dir = exe
        .parent()
        .ok_or_else(|| MediaError::Worker("the running executable has no directory".into()))?;
    let mut candidates = vec![dir.join(WORKER_BINARY)];
    if dir.ends_with("deps")
        && let Some(above) = dir.parent()
    {
        candidates.push(above.join(WORKER_BINARY));
    }
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        MediaError::Worker(format!(
            "{WORKER_BINARY} not found at {} (install it next to talker-agent, or build it: cargo build -p talker-media)",
            candidates[0].display()
        ))
    })
}

/// Requests waiting for their reply, by request id.
type Pending = Mutex<HashMap<u64, oneshot::Sender<Outcome>>>;

/// One running worker process.
struct Connection {
    /// Counts worker starts; a handle from an older worker is stale.
    generation: u64,
    /// The worker's process id.
    pid: Option<u32>,
    /// Our end of the worker's stdin, a packet socket (see [`splitdial_media::passing`]).
    /// Tokio has no packet-socket type; its stream type only waits for readiness here, the
    /// packets are sent with `sendmsg` ourselves.
    stdin: tokio::sync::Mutex<Option<UnixStream>>,
    pending: Arc<Pending>,
    /// Set when the worker's stdout closed: it is gone, or going.
    gone: Arc<AtomicBool>,
    next_request: AtomicU64,
    /// Resolves when the process has exited and was reaped.
    exited: tokio::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

impl Connection {
    async fn request(&self, op: Operation, limit: Duration) -> Result<Outcome, MediaError> {
        self.request_with(op, Vec::new(), limit).await
    }

    /// Sends a request with `sockets` passed beside it, and waits for its reply. The sockets
    /// are ours again (and closed) once sent: the worker holds its own copies.
    async fn request_with(
        &self,
        op: Operation,
        sockets: Vec<OwnedFd>,
        limit: Duration,
    ) -> Result<Outcome, MediaError> {
        if self.gone.load(Ordering::Acquire) {
            return Err(MediaError::Worker("the media worker has exited".into()));
        }
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let line = encode_line(&Request { id, op })
            .map_err(|e| MediaError::Worker(format!("cannot encode a request: {e}")))?;
        let (reply_tx, reply_rx) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(id, reply_tx);
        }
        // The reader may have failed everything waiting just before the insert.
        if self.gone.load(Ordering::Acquire) {
            self.forget(id);
            return Err(MediaError::Worker("the media worker has exited".into()));
        }
        let written = {
            let stdin = self.stdin.lock().await;
            match stdin.as_ref() {
                Some(socket) => send_packet(socket, &line, &sockets)
                    .await
                    .map_err(|e| e.to_string()),
                None => Err("the media worker is stopping".into()),
            }
        };
        if let Err(e) = written {
            self.forget(id);
            return Err(MediaError::Worker(format!("cannot send a request: {e}")));
        }
        match tokio::time::timeout(limit, reply_rx).await {
            Ok(Ok(Outcome::Failed(why))) => Err(MediaError::Worker(why)),
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(MediaError::Worker("the media worker has exited".into())),
            Err(_) => {
                self.forget(id);
                Err(MediaError::Worker(format!("no reply within {limit:?}")))
            }
        }
    }

    fn forget(&self, id: u64) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&id);
        }
    }

    /// Closes the worker's stdin: it stops what is left and exits.
    async fn close(&self) {
        self.stdin.lock().await.take();
    }

    async fn wait_exit(&self, limit: Duration) -> bool {
        let exited = self.exited.lock().await.take();
        match exited {
            Some(rx) => tokio::time::timeout(limit, rx).await.is_ok(),
            None => true,
        }
    }
}

/// Sends one request packet with `sockets` as `SCM_RIGHTS`, waiting while the socket is full.
async fn send_packet(
    socket: &UnixStream,
    packet: &[u8],
    sockets: &[OwnedFd],
) -> std::io::Result<()> {
    loop {
        socket.writable().await?;
        match socket.try_io(Interest::WRITABLE, || {
            send_with_sockets(socket, packet, sockets)
        }) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            sent => return sent,
        }
    }
}

/// Lifecycle state: the current worker and how many of its sessions and conferences live.
#[derive(Default)]
struct Lifecycle {
    current: Option<Arc<Connection>>,
    live: usize,
    generation: u64,
}

/// The agent's connection to its media worker (one per agent process, see [`MediaWorker::shared`]).
pub struct MediaWorker {
    /// Held across start and stop requests, so a worker is never told to exit while a new
    /// session is being set up on it.
    lifecycle: tokio::sync::Mutex<Lifecycle>,
    /// The current worker, for requests that do not change the lifecycle (statistics).
    current: Mutex<Option<Arc<Connection>>>,
    next_object: AtomicU64,
}

/// A session or conference in some worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Handle {
    /// Which worker process runs it (see `Lifecycle::generation`).
    pub(super) generation: u64,
    /// The agent's number for it, named in every request about it.
    pub(super) object: u64,
}

impl MediaWorker {
    /// The agent's worker connection. One per process: every call's media shares the worker,
    /// so a second call does not pay for a second GStreamer.
    pub fn shared() -> &'static MediaWorker {
        static SHARED: OnceLock<MediaWorker> = OnceLock::new();
        SHARED.get_or_init(|| MediaWorker {
            lifecycle: tokio::sync::Mutex::new(Lifecycle::default()),
            current: Mutex::new(None),
            next_object: AtomicU64::new(1),
        })
    }

    /// Whether a worker process is running (or still exiting).
    pub fn is_running(&self) -> bool {
        self.current
            .lock()
            .map(|c| c.as_ref().is_some_and(|c| !c.gone.load(Ordering::Acquire)))
            .unwrap_or(false)
    }

    /// The running worker, started now if there is none.
    fn running_worker(&self, lifecycle: &mut Lifecycle) -> Result<Arc<Connection>, MediaError> {
        if let Some(c) = lifecycle
            .current
            .clone()
            .filter(|c| !c.gone.load(Ordering::Acquire))
        {
            return Ok(c);
        }
        lifecycle.generation += 1;
        lifecycle.live = 0;
        let connection = Arc::new(spawn(lifecycle.generation)?);
        lifecycle.current = Some(connection.clone());
        if let Ok(mut current) = self.current.lock() {
            *current = Some(connection.clone());
        }
        Ok(connection)
    }

    /// Starts the worker (if needed) and has it initialise GStreamer while a call is being
    /// set up, so the call's media starts at once when it is answered. The worker stays up
    /// at least as long as the returned guard lives. A failure only costs the head start.
    pub async fn warm_up(&self) -> WarmWorker {
        let mut lifecycle = self.lifecycle.lock().await;
        let connection = match self.running_worker(&mut lifecycle) {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "cannot start the media worker ahead of the call");
                return WarmWorker { generation: None };
            }
        };
        lifecycle.live += 1;
        let warming = connection.clone();
        tokio::spawn(async move {
            if let Err(e) = warming.request(Operation::WarmUp, SLOW_REQUEST).await {
                warn!(error = %e, "the media worker could not initialise GStreamer");
            }
        });
        WarmWorker {
            generation: Some(connection.generation),
        }
    }

    /// Ends one hold on the worker of `generation`: a [`WarmWorker`]'s, or a
    /// session's that the worker ended by itself (one that became a conference leg).
    pub(super) async fn release(&self, generation: u64) {
        let mut lifecycle = self.lifecycle.lock().await;
        if lifecycle
            .current
            .as_ref()
            .is_some_and(|c| c.generation == generation)
        {
            lifecycle.live = lifecycle.live.saturating_sub(1);
            self.close_if_unused(&mut lifecycle).await;
        }
    }

    /// The process id of the running worker, if one runs.
    pub fn worker_pid(&self) -> Option<u32> {
        self.current
            .lock()
            .ok()
            .and_then(|c| c.as_ref().and_then(|c| c.pid))
    }

    /// Runs a request that creates a session or conference, starting a worker if needed.
    pub(super) async fn create(
        &self,
        build: impl FnOnce(u64) -> Operation,
        sockets: Vec<OwnedFd>,
    ) -> Result<(Handle, Outcome), MediaError> {
        let mut lifecycle = self.lifecycle.lock().await;
        let connection = self.running_worker(&mut lifecycle)?;
        let object = self.next_object.fetch_add(1, Ordering::Relaxed);
        match connection
            .request_with(build(object), sockets, SLOW_REQUEST)
            .await
        {
            Ok(outcome) => {
                lifecycle.live += 1;
                let handle = Handle {
                    generation: connection.generation,
                    object,
                };
                Ok((handle, outcome))
            }
            Err(e) => {
                self.close_if_unused(&mut lifecycle).await;
                Err(e)
            }
        }
    }

    /// Runs a request that ends a session or conference; the worker exits when it was the last.
    pub(super) async fn destroy(&self, handle: Handle, op: Operation) {
        let mut lifecycle = self.lifecycle.lock().await;
        let Some(connection) = lifecycle
            .current
            .clone()
            .filter(|c| c.generation == handle.generation)
        else {
            return; // That worker is gone, and its sessions with it.
        };
        if let Err(e) = connection.request(op, SLOW_REQUEST).await {
            warn!(error = %e, "media teardown failed");
        }
        lifecycle.live = lifecycle.live.saturating_sub(1);
        self.close_if_unused(&mut lifecycle).await;
    }

    async fn close_if_unused(&self, lifecycle: &mut Lifecycle) {
        if lifecycle.live > 0 {
            return;
        }
        if let Some(connection) = lifecycle.current.take() {
            debug!("no media left: the media worker exits");
            connection.close().await;
            if let Ok(mut current) = self.current.lock() {
                *current = None;
            }
        }
    }

    /// A request on an existing session or conference.
    pub(super) async fn ask(
        &self,
        handle: Handle,
        op: Operation,
        limit: Duration,
    ) -> Result<Outcome, MediaError> {
        self.ask_with(handle, op, Vec::new(), limit).await
    }

    /// [`MediaWorker::ask`] with sockets passed beside the request.
    pub(super) async fn ask_with(
        &self,
        handle: Handle,
        op: Operation,
        sockets: Vec<OwnedFd>,
        limit: Duration,
    ) -> Result<Outcome, MediaError> {
        let connection = self
            .current
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .filter(|c| c.generation == handle.generation)
            .ok_or_else(|| MediaError::Worker("the media worker running this has exited".into()))?;
        connection.request_with(op, sockets, limit).await
    }

    /// Stops the worker at agent shutdown: closes its stdin (it stops what is left, cleanly)
    /// and waits for it to exit.
    pub async fn shut_down(&self) {
        let connection = {
            let mut lifecycle = self.lifecycle.lock().await;
            lifecycle.live = 0;
            lifecycle.current.take()
        };
        if let Ok(mut current) = self.current.lock() {
            *current = None;
        }
        if let Some(connection) = connection {
            connection.close().await;
            if !connection.wait_exit(EXIT_WAIT).await {
                warn!("the media worker did not exit in time");
            }
        }
    }
}

/// Keeps the media worker running while a call is set up (see [`MediaWorker::warm_up`]);
/// hold it until the call's media has started or the call failed.
#[must_use = "the worker may exit as soon as the guard is dropped"]
pub struct WarmWorker {
    generation: Option<u64>,
}

impl Drop for WarmWorker {
    fn drop(&mut self) {
        if let Some(generation) = self.generation
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { MediaWorker::shared().release(generation).await });
        }
    }
}

/// Starts a worker process and the task that reads its replies.
fn spawn(generation: u64) -> Result<Connection, MediaError> {
    let binary = worker_binary()?;
    let (ours, theirs) = request_socket_pair()
        .map_err(|e| MediaError::Worker(format!("cannot make the worker's request socket: {e}")))?;
    let ours = std::os::unix::net::UnixStream::from(ours);
    let stdin = ours
        .set_nonblocking(true)
        .and_then(|()| UnixStream::from_std(ours))
        .map_err(|e| MediaError::Worker(format!("cannot watch the request socket: {e}")))?;
    let mut child = Command::new(&binary)
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::piped())
        // Its tracing goes where ours goes.
        .stderr(Stdio::inherit())
        // A terminal's Ctrl-C reaches only the agent, which then stops the worker in order.
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
        .map_err(|e| MediaError::Worker(format!("cannot start {}: {e}", binary.display())))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| MediaError::Worker("no pipe to the media worker".into()))?;
    let pid = child.id();
    info!(pid = pid.unwrap_or(0), generation, "media worker started");
    let pending: Arc<Pending> = Arc::new(Mutex::new(HashMap::new()));
    let gone = Arc::new(AtomicBool::new(false));
    let (exited_tx, exited_rx) = oneshot::channel();
    tokio::spawn(read_replies(
        child,
        stdout,
        pending.clone(),
        gone.clone(),
        exited_tx,
    ));
    Ok(Connection {
        generation,
        pid,
        stdin: tokio::sync::Mutex::new(Some(stdin)),
        pending,
        gone,
        next_request: AtomicU64::new(1),
        exited: tokio::sync::Mutex::new(Some(exited_rx)),
    })
}

/// Routes the worker's replies to their requests until its stdout closes, then fails what is
/// still waiting and reaps the process.
async fn read_replies(
    mut child: Child,
    stdout: ChildStdout,
    pending: Arc<Pending>,
    gone: Arc<AtomicBool>,
    exited: oneshot::Sender<()>,
) {
    let mut reader = BufReader::new(stdout);
    let mut lines = LineBuffer::new(MAX_LINE_BYTES);
    loop {
        let available = match reader.fill_buf().await {
            Ok([]) => break,
            Ok(bytes) => bytes,
            Err(e) => {
                warn!(error = %e, "cannot read from the media worker");
                break;
            }
        };
        let (used, line) = lines.push(available);
        reader.consume(used);
        match line {
            None => {}
            Some(Line::TooLong) => warn!("dropped an overlong line from the media worker"),
            Some(Line::Complete(bytes)) => match serde_json::from_slice::<Reply>(&bytes) {
                Ok(reply) => {
                    let waiting = pending.lock().ok().and_then(|mut p| p.remove(&reply.id));
                    if let Some(waiting) = waiting {
                        let _ = waiting.send(reply.outcome);
                    }
                }
                Err(e) => warn!(error = %e, "unreadable line from the media worker"),
            },
        }
    }
    gone.store(true, Ordering::Release);
    // Dropping the senders fails every request still waiting.
    if let Ok(mut pending) = pending.lock() {
        pending.clear();
    }
    match child.wait().await {
        Ok(status) if status.success() => debug!("media worker exited"),
        Ok(status) => warn!(%status, "media worker ended abnormally"),
        Err(e) => warn!(error = %e, "cannot reap the media worker"),
    }
    let _ = exited.send(());
}
