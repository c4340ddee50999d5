//! A TCP proxy in front of a shared service (a broker, Redis), so a test can take it away from
//! its own clients (a server, a consumer) without stopping the service everyone else uses.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    address: SocketAddr,
    target: SocketAddr,
    mode: watch::Sender<Mode>,
    accepting: JoinHandle<()>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Bytes flow.
    Open,
    /// Connections are closed and new ones turned away: a service that is down.
    Cut,
    /// Connections stay open but nothing flows: a service that hangs.
    Stalled,
}

impl Proxy {
    /// Starts a proxy to the broker `url` points at.
    pub async fn start(url: &str) -> Proxy {
        let target = service_address(url);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("a bound address");
        let (mode, watched) = watch::channel(Mode::Open);
        let accepting = tokio::spawn(accept(listener, target, watched));
        Proxy {
            address,
            target,
            mode,
            accepting,
        }
    }

    /// The same broker URL, reached through this proxy.
    pub fn url(&self, url: &str) -> String {
        url.replacen(&self.target.to_string(), &self.address.to_string(), 1)
    }

    /// Closes every connection through the proxy and turns new ones away.
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Holds every connection open without passing a byte, new ones too; they are closed when
    /// the proxy is restored or cut.
    pub fn stall(&self) {
        self.mode.send_replace(Mode::Stalled);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Open);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}

/// `amqp://user:pass@127.0.0.1:5672/%2f` → `127.0.0.1:5672`.
fn service_address(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    host_port.parse().expect("a numeric broker address")
}

async fn accept(listener: TcpListener, target: SocketAddr, mode: watch::Receiver<Mode>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        // Accepting and closing at once looks to the client like a service that hangs up.
        let current = *mode.borrow();
        match current {
            Mode::Open => {
                tokio::spawn(relay(client, target, mode.clone()));
            }
            Mode::Stalled => {
                let mut mode = mode.clone();
                tokio::spawn(async move {
                    let _ = mode.wait_for(|m| *m != Mode::Stalled).await;
                    drop(client);
                });
            }
            Mode::Cut => {}
        }
    }
}

async fn relay(mut client: TcpStream, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let Ok(mut service) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut service) => return,
        _ = mode.wait_for(|m| *m != Mode::Open) => {}
    }
    // Stalled: nothing more flows, and the connection closes once that ends.
    let _ = mode.wait_for(|m| *m != Mode::Stalled).await;
}
