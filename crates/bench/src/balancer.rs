//! A TCP balancer, as HAProxy or a cloud load balancer in TCP mode would be in front of
//! several Sesame instances: each client connection goes to the next backend in turn, and the
//! bytes are copied both ways. `make bench-large` puts two instances behind it (issue 18).
//! It runs as a process of its own (`sesame-bench balancer`), so that its CPU is measured
//! apart from the load generator's.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{ensure, Context};
use tokio::net::{TcpListener, TcpStream};

/// Accepts connections on `listener` and hands each to the next of `backends`, forever.
///
/// # Errors
/// When no backend is given; a failed accept is retried, and a backend that refuses a
/// connection only closes that client's connection (as a balancer without health checks).
pub async fn serve(listener: TcpListener, backends: Vec<SocketAddr>) -> anyhow::Result<()> {
    ensure!(
        !backends.is_empty(),
        "the balancer needs at least one backend"
    );
    let backends = Arc::new(backends);
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let (mut client, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("balancer: accept failed: {e}");
                continue;
            }
        };
        let backend = backends[next.fetch_add(1, Ordering::Relaxed) % backends.len()];
        tokio::spawn(async move {
            let mut server = match TcpStream::connect(backend).await {
                Ok(server) => server,
                Err(e) => {
                    eprintln!("balancer: {backend} refused a connection: {e}");
                    return;
                }
            };
            // Small request and answer messages: no Nagle delay on either leg.
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
    }
}

/// Binds `listen` and runs [`serve`] (the `sesame-bench balancer` command).
///
/// # Errors
/// When the address cannot be bound, or as [`serve`].
pub async fn run(listen: &str, backends: Vec<SocketAddr>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    serve(listener, backends).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A backend that answers every connection with its name.
    async fn named_backend(name: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut asked = [0u8; 5];
                    conn.read_exact(&mut asked).await.unwrap();
                    conn.write_all(name.as_bytes()).await.unwrap();
                    conn.write_all(&asked).await.unwrap();
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn connections_go_to_each_backend_in_turn_and_bytes_flow_both_ways() {
        let a = named_backend("a").await;
        let b = named_backend("b").await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, vec![a, b]));
        let mut answers = Vec::new();
        for n in 0..4 {
            let mut conn = TcpStream::connect(front).await.unwrap();
            conn.write_all(format!("ping{n}").as_bytes()).await.unwrap();
            let mut answer = String::new();
            conn.read_to_string(&mut answer).await.unwrap();
            answers.push(answer);
        }
        assert_eq!(answers, ["aping0", "bping1", "aping2", "bping3"]);
    }

    #[tokio::test]
    async fn a_balancer_without_backends_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        assert!(serve(listener, Vec::new()).await.is_err());
    }
}
