//! A throwaway `redis-server` on a free loopback port, for tests and
//! benchmarks (Debian's `redis-server` package must be installed).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process, stopped when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Child,
    aof_dir: Option<PathBuf>,
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl RedisServer {
    /// Starts one with persistence off, or with an append-only file
    /// (fsync always) in `aof_dir`, so a restart keeps the data.
    pub fn start(port: u16, aof_dir: Option<PathBuf>) -> std::io::Result<RedisServer> {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]);
        match &aof_dir {
            Some(dir) => cmd
                .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                .arg(dir),
            None => cmd.args(["--appendonly", "no"]),
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot run redis-server ({e}); install Debian's redis-server package"),
                )
            })?;
        let mut server = RedisServer {
            port,
            child,
            aof_dir,
        };
        // Waiting for a child process to listen: connect until it answers.
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || server.child.try_wait()?.is_some() {
                return Err(std::io::Error::other(format!(
                    "redis-server did not start on port {port}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server and starts it again on the same port.
    pub fn restart(&mut self) -> std::io::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        *self = RedisServer::start(self.port, self.aof_dir.take())?;
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy on loopback that holds every chunk for a fixed one-way
/// delay before passing it on, in both directions: a slow link (a Redis in
/// another region) without limiting throughput. Stops when dropped.
#[derive(Debug)]
pub struct DelayProxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl DelayProxy {
    /// Proxies a free loopback port to `127.0.0.1:upstream` with `delay`
    /// each way (so a round trip costs twice that).
    pub async fn start(upstream: u16, delay: Duration) -> std::io::Result<DelayProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(delay_line(cr, sw, delay), delay_line(sr, cw, delay));
                });
            }
        });
        Ok(DelayProxy { port, task })
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0` through the proxy.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
async fn delay_line(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = tokio::time::Instant::now() + delay;
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    };
    tokio::join!(reader, writer);
}

/// The store under `prefix` at `url`, otherwise with the default options:
/// how a test opens the store several replicas share.
pub async fn store_with_prefix(
    url: &str,
    prefix: &str,
) -> tasktrack_core::Result<crate::RedisStore> {
    let options = crate::RedisOptions {
        prefix: prefix.into(),
        ..crate::RedisOptions::default()
    };
    crate::RedisStore::connect_with(url, options).await
}

/// Which replica holds each shard's lease now, for the store under
/// `prefix` at `url`: what the fleet tests assert the split with.
pub async fn lease_holders(
    url: &str,
    prefix: &str,
) -> tasktrack_core::Result<std::collections::BTreeMap<u32, String>> {
    store_with_prefix(url, prefix).await?.lease_holders().await
}
