//! A TCP proxy a test controls: "the database is down", "the Redis link is slow", "this
//! instance's writes hang and land later", for one test, without touching the shared server.
//!
//! Each direction of every connection is forwarded by a reader (which timestamps what it
//! reads) and a writer (which delivers it when the direction's [`Mode`] lets it), so a
//! direction can be:
//!
//! - [`Mode::Pass`]: forwarded as it comes;
//! - [`Mode::Delay`]: every chunk delivered a fixed time after it arrived (a slow link);
//! - [`Mode::Blackhole`]: nothing delivered, nothing closed or reset: the bytes wait in the
//!   proxy, and when the direction is set back to pass (or delay) they are delivered in
//!   order — even if the sender has given up and closed its end meanwhile. That is how a
//!   command that timed out on the client still executes on the server later;
//! - [`Mode::Reset`] (the whole proxy): every connection dropped, new ones accepted and
//!   closed at once, until another mode is set. [`TcpProxy::cut`] and
//!   [`TcpProxy::restore`] are shorthands.
//!
//! To make an interleaving certain rather than likely, a test can arm a one-shot trigger
//! that blackholes the upstream direction (client → server) at a precise point: when the
//! client sends a chunk containing a pattern (that chunk is held too), or when the server
//! answers with one (held before the answer is delivered, so nothing the client sends after
//! seeing it gets through). The hold covers every connection of the proxy, so it does not
//! matter which pooled connection the client uses next.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// What a direction does with the bytes it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward as they come.
    Pass,
    /// Deliver every chunk this long after it arrived.
    Delay(Duration),
    /// Hold everything, close nothing; delivered in order once the mode changes.
    Blackhole,
    /// Drop every connection and close new ones at once (the whole proxy, both directions).
    Reset,
}

/// A direction of the proxied connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server: commands, queries.
    Upstream,
    /// Server to client: answers.
    Downstream,
}

/// When an armed trigger blackholes the upstream direction.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Trigger {
    /// When the client sends a chunk containing the pattern (the chunk is held).
    Sent(Vec<u8>),
    /// When the server answers with a chunk containing the pattern (held from before the
    /// answer is delivered).
    Answered(Vec<u8>),
}

#[derive(Debug)]
struct State {
    upstream: Mode,
    downstream: Mode,
    reset: bool,
    trigger: Option<Trigger>,
    /// A trigger fired since the last one was armed.
    fired: bool,
}

impl State {
    fn mode(&self, direction: Direction) -> Mode {
        match direction {
            Direction::Upstream => self.upstream,
            Direction::Downstream => self.downstream,
        }
    }
}

#[derive(Debug)]
struct Shared {
    target: SocketAddr,
    state: Mutex<State>,
    /// Bumped on every change of `state`: writers waiting for a mode wake on it.
    changed: watch::Sender<()>,
    connections: Mutex<Vec<Connection>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn connections(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.state());
        self.changed.send_replace(());
    }

    /// Fires the armed trigger if `chunk`, read in `direction`, matches it. Called before the
    /// chunk is forwarded.
    fn check_trigger(&self, direction: Direction, chunk: &[u8]) {
        let fire = {
            let state = self.state();
            match (&state.trigger, direction) {
                (Some(Trigger::Sent(pattern)), Direction::Upstream)
                | (Some(Trigger::Answered(pattern)), Direction::Downstream) => {
                    contains(chunk, pattern)
                }
                _ => false,
            }
        };
        if fire {
            self.update(|state| {
                state.trigger = None;
                state.fired = true;
                state.upstream = Mode::Blackhole;
            });
        }
    }
}

/// One proxied connection: its four pumps and the bytes read but not yet delivered.
#[derive(Debug)]
struct Connection {
    tasks: Vec<JoinHandle<()>>,
    pending: [Arc<AtomicUsize>; 2],
}

impl Connection {
    fn finished(&self) -> bool {
        self.tasks.iter().all(JoinHandle::is_finished)
    }

    fn abort(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Forwards `127.0.0.1:<port>` to a target in the [`Mode`] the test sets.
#[derive(Debug)]
pub struct TcpProxy {
    port: u16,
    shared: Arc<Shared>,
    acceptor: JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding to `target`, both directions in [`Mode::Pass`].
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().expect("a local address").port();
        let shared = Arc::new(Shared {
            target,
            state: Mutex::new(State {
                upstream: Mode::Pass,
                downstream: Mode::Pass,
                reset: false,
                trigger: None,
                fired: false,
            }),
            changed: watch::channel(()).0,
            connections: Mutex::new(Vec::new()),
        });
        let acceptor = tokio::spawn(accept(listener, Arc::clone(&shared)));
        Self {
            port,
            shared,
            acceptor,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Sets both directions to `mode` ([`Mode::Reset`] drops every connection).
    pub fn set_mode(&self, mode: Mode) {
        if mode == Mode::Reset {
            self.reset();
            return;
        }
        self.shared.update(|state| {
            state.reset = false;
            state.upstream = mode;
            state.downstream = mode;
        });
    }

    /// Sets one direction to `mode`; [`Mode::Reset`] applies to the whole proxy.
    pub fn set_direction(&self, direction: Direction, mode: Mode) {
        if mode == Mode::Reset {
            self.reset();
            return;
        }
        self.shared.update(|state| {
            state.reset = false;
            match direction {
                Direction::Upstream => state.upstream = mode,
                Direction::Downstream => state.downstream = mode,
            }
        });
    }

    /// The current mode of `direction` ([`Mode::Reset`] while the proxy is cut).
    pub fn mode(&self, direction: Direction) -> Mode {
        let state = self.shared.state();
        if state.reset {
            Mode::Reset
        } else {
            state.mode(direction)
        }
    }

    /// Drops every open connection and refuses new ones (accepted and closed at once).
    pub fn cut(&self) {
        self.reset();
    }

    /// Forwards again, both directions in [`Mode::Pass`]; anything held is delivered.
    pub fn restore(&self) {
        self.set_mode(Mode::Pass);
    }

    fn reset(&self) {
        self.shared.update(|state| {
            state.reset = true;
            state.trigger = None;
        });
        for connection in self.shared.connections().drain(..) {
            connection.abort();
        }
    }

    /// Arms a one-shot trigger: the first chunk the client sends that contains `pattern`
    /// blackholes the upstream direction, that chunk included.
    pub fn hold_upstream_when_sent(&self, pattern: &[u8]) {
        self.arm(Trigger::Sent(pattern.to_vec()));
    }

    /// Arms a one-shot trigger: the first answer of the server that contains `pattern`
    /// blackholes the upstream direction before the answer is delivered, so nothing the
    /// client sends once it has seen the answer gets through.
    pub fn hold_upstream_when_answered(&self, pattern: &[u8]) {
        self.arm(Trigger::Answered(pattern.to_vec()));
    }

    fn arm(&self, trigger: Trigger) {
        self.shared.update(|state| {
            state.trigger = Some(trigger);
            state.fired = false;
        });
    }

    /// Waits (at most `within`) until the armed trigger has fired.
    pub async fn wait_until_triggered(&self, within: Duration) -> bool {
        self.wait_for(within, |proxy| proxy.shared.state().fired)
            .await
    }

    /// Bytes read in `direction` and not delivered yet (held, delayed or in flight).
    pub fn pending(&self, direction: Direction) -> usize {
        let index = direction as usize;
        self.shared
            .connections()
            .iter()
            .map(|connection| connection.pending[index].load(Ordering::SeqCst))
            .sum()
    }

    /// Waits (at most `within`) until at least `bytes` wait in `direction`.
    pub async fn wait_until_pending(
        &self,
        direction: Direction,
        bytes: usize,
        within: Duration,
    ) -> bool {
        self.wait_for(within, |proxy| proxy.pending(direction) >= bytes)
            .await
    }

    /// Waits (at most `within`) until everything read has been delivered, both ways: after
    /// a blackhole is lifted, the held writes have then reached the server.
    pub async fn wait_until_drained(&self, within: Duration) -> bool {
        self.wait_for(within, |proxy| {
            proxy.pending(Direction::Upstream) == 0 && proxy.pending(Direction::Downstream) == 0
        })
        .await
    }

    async fn wait_for(&self, within: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        for connection in self.shared.connections().drain(..) {
            connection.abort();
        }
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        if shared.state().reset {
            continue; // dropped: closed at once
        }
        let Ok(server) = TcpStream::connect(shared.target).await else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let pending = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
        let mut tasks = Vec::with_capacity(4);
        for (direction, read, write) in [
            (
                Direction::Upstream,
                Box::new(client_read) as Box<dyn AsyncRead + Send + Unpin>,
                Box::new(server_write) as Box<dyn AsyncWrite + Send + Unpin>,
            ),
            (
                Direction::Downstream,
                Box::new(server_read),
                Box::new(client_write),
            ),
        ] {
            let (sender, receiver) = mpsc::unbounded_channel();
            let counter = Arc::clone(&pending[direction as usize]);
            tasks.push(tokio::spawn(pump_in(
                read,
                sender,
                Arc::clone(&counter),
                Arc::clone(&shared),
                direction,
            )));
            tasks.push(tokio::spawn(pump_out(
                receiver,
                write,
                counter,
                Arc::clone(&shared),
                direction,
            )));
        }
        let mut connections = shared.connections();
        connections.retain(|connection| !connection.finished());
        if shared.state().reset {
            for task in &tasks {
                task.abort();
            }
        } else {
            connections.push(Connection { tasks, pending });
        }
    }
}

/// Reads one direction, timestamps every chunk and queues it for [`pump_out`]. The end of
/// the stream closes the queue; what is queued is still delivered.
async fn pump_in(
    mut read: Box<dyn AsyncRead + Send + Unpin>,
    queue: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
    pending: Arc<AtomicUsize>,
    shared: Arc<Shared>,
    direction: Direction,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match read.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let chunk = buffer[..read].to_vec();
        pending.fetch_add(read, Ordering::SeqCst);
        shared.check_trigger(direction, &chunk);
        if queue.send((Instant::now(), chunk)).is_err() {
            pending.fetch_sub(read, Ordering::SeqCst);
            return;
        }
    }
}

/// Delivers one direction's queue when its mode lets it; closes the write side when the
/// queue ends. A peer that went away makes the rest be discarded (and counted delivered).
async fn pump_out(
    mut queue: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    mut write: Box<dyn AsyncWrite + Send + Unpin>,
    pending: Arc<AtomicUsize>,
    shared: Arc<Shared>,
    direction: Direction,
) {
    let mut changed = shared.changed.subscribe();
    let mut broken = false;
    while let Some((arrived, chunk)) = queue.recv().await {
        loop {
            changed.borrow_and_update();
            let mode = shared.state().mode(direction);
            match mode {
                Mode::Pass | Mode::Reset => break,
                Mode::Delay(delay) => {
                    let due = arrived + delay;
                    if Instant::now() >= due {
                        break;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(due.into()) => {}
                        _ = changed.changed() => {}
                    }
                }
                Mode::Blackhole => {
                    if changed.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        if !broken && write.write_all(&chunk).await.is_err() {
            broken = true;
        }
        pending.fetch_sub(chunk.len(), Ordering::SeqCst);
    }
    let _ = write.shutdown().await;
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}
