//! nginx (Debian's `nginx-light`) serving one file from disk, with its own minimal config in a
//! temporary directory, in the foreground; stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub struct Nginx {
    binary: PathBuf,
    dir: tempfile::TempDir,
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Nginx {
    /// Serves `bytes` as `/<name>` (with nginx's defaults a user would keep: sendfile, worker
    /// processes per core, no access log).
    pub fn start(name: &str, bytes: &[u8]) -> anyhow::Result<Nginx> {
        let binary = super::require_tool("nginx", "nginx-light")?;
        let dir = tempfile::Builder::new()
            .prefix("hark-bench-nginx")
            .tempdir()?;
        let root = dir.path().join("www");
        std::fs::create_dir(&root)?;
        std::fs::write(root.join(name), bytes)?;
        super::open_to_all(dir.path())?;
        let port = super::free_port()?;
        let d = dir.path().display();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "worker_processes auto;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n\
                 types {{ audio/ogg ogg; }}\n  default_type application/octet-stream;\n\
                 client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
                 server {{ listen 127.0.0.1:{port}; root {d}/www; }}\n}}\n"
            ),
        )?;
        let child = Command::new(&binary)
            .args(["-e", &format!("{d}/error.log"), "-p", &d.to_string(), "-c"])
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .spawn()?;
        let nginx = Nginx {
            binary,
            dir,
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        nginx.wait_until_listening(port)?;
        Ok(nginx)
    }

    fn wait_until_listening(&self, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let d = self.dir.path().display().to_string();
        let stopped = Command::new(&self.binary)
            .args(["-e", &format!("{d}/error.log"), "-p", &d, "-c"])
            .arg(self.dir.path().join("nginx.conf"))
            .args(["-s", "stop"])
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
