//! A TCP proxy in front of a shared broker, so a test can take "the broker" away from its own
//! clients (a server, a consumer) without stopping the broker everyone else uses.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    address: SocketAddr,
    target: SocketAddr,
    open: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to the broker `url` points at.
    pub async fn start(url: &str) -> Proxy {
        let target = broker_address(url);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("a bound address");
        let (open, is_open) = watch::channel(true);
        let accepting = tokio::spawn(accept(listener, target, is_open));
        Proxy {
            address,
            target,
            open,
            accepting,
        }
    }

    /// The same broker URL, reached through this proxy.
    pub fn url(&self, url: &str) -> String {
        url.replacen(&self.target.to_string(), &self.address.to_string(), 1)
    }

    /// Closes every connection through the proxy and turns new ones away.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}

/// `amqp://user:pass@127.0.0.1:5672/%2f` → `127.0.0.1:5672`.
fn broker_address(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    host_port.parse().expect("a numeric broker address")
}

async fn accept(listener: TcpListener, target: SocketAddr, is_open: watch::Receiver<bool>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        // Accepting and closing at once looks to the client like a broker that hangs up.
        if *is_open.borrow() {
            tokio::spawn(relay(client, target, is_open.clone()));
        }
    }
}

async fn relay(mut client: TcpStream, target: SocketAddr, mut is_open: watch::Receiver<bool>) {
    let Ok(mut broker) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut broker) => {}
        _ = is_open.wait_for(|open| !open) => {}
    }
}
