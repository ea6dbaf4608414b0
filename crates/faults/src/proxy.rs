//! A TCP proxy in front of PostgreSQL or Redis that injects the network faults of the F rows:
//! added latency, a reset of every open connection (RST, as toxiproxy's `reset_peer`), and a
//! partition (new connections reset at once, open ones cut).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to traffic now.
#[derive(Debug)]
struct Faults {
    latency_ms: AtomicU64,
    partitioned: AtomicBool,
    /// Bumped to reset every open connection.
    cut: watch::Sender<u64>,
}

/// A running proxy; it stops with the process.
#[derive(Debug, Clone)]
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    faults: Arc<Faults>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, _) = watch::channel(0);
        let faults = Arc::new(Faults {
            latency_ms: AtomicU64::new(0),
            partitioned: AtomicBool::new(false),
            cut,
        });
        let shared = Arc::clone(&faults);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let faults = Arc::clone(&shared);
                tokio::spawn(async move {
                    if faults.partitioned.load(Ordering::SeqCst) {
                        reset(&client);
                        return;
                    }
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        reset(&client);
                        return;
                    };
                    pipe(client, server, faults).await;
                });
            }
        });
        Ok(Self { addr, faults })
    }

    /// Delays every chunk from the server to the client by `latency` (as toxiproxy's
    /// `latency` toxic on the downstream side): each round trip takes that much longer.
    pub fn set_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.faults.latency_ms.store(ms, Ordering::SeqCst);
    }

    /// Resets every open connection (the peers see ECONNRESET); new ones pass.
    pub fn reset_all(&self) {
        self.faults.cut.send_modify(|n| *n += 1);
    }

    /// Cuts the link: open connections reset, new ones reset at once, until `heal`.
    pub fn partition(&self) {
        self.faults.partitioned.store(true, Ordering::SeqCst);
        self.reset_all();
    }

    /// Ends a partition and removes latency.
    pub fn heal(&self) {
        self.faults.partitioned.store(false, Ordering::SeqCst);
        self.faults.latency_ms.store(0, Ordering::SeqCst);
    }
}

/// Closes with RST rather than FIN.
fn reset(stream: &TcpStream) {
    // A failure leaves an ordinary close, which the peer also sees as a closed connection.
    stream.set_zero_linger().ok();
}

async fn pipe(client: TcpStream, server: TcpStream, faults: Arc<Faults>) {
    client.set_nodelay(true).ok();
    server.set_nodelay(true).ok();
    // Whatever ends the pipe without an orderly shutdown (a cut) then resets both peers.
    reset(&client);
    reset(&server);
    let mut cut = faults.cut.subscribe();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = {
        let faults = Arc::clone(&faults);
        async move { copy(&mut client_read, &mut server_write, &faults, false).await }
    };
    let down = {
        let faults = Arc::clone(&faults);
        async move { copy(&mut server_read, &mut client_write, &faults, true).await }
    };
    tokio::pin!(up, down);
    let mut up_done = false;
    let mut down_done = false;
    loop {
        tokio::select! {
            _ = cut.changed() => {
                // Returning drops both halves of both sockets: RST to each peer.
                return;
            }
            () = &mut up, if !up_done => { up_done = true; }
            () = &mut down, if !down_done => { down_done = true; }
        }
        if up_done && down_done {
            return;
        }
    }
}

async fn copy(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    faults: &Faults,
    delayed: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                to.shutdown().await.ok();
                return;
            }
            Ok(n) => n,
        };
        let latency = faults.latency_ms.load(Ordering::SeqCst);
        if delayed && latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
