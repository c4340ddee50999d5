//! What the throughput benchmark measures against: nginx serving a file from disk, wrk driving
//! the load, and upload bodies whose bytes differ each time.

pub mod nginx;
pub mod unique;
pub mod wrk;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The path of `tool` on `PATH` (or in the sbin directories a non-root `PATH` may lack).
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// The path of `tool`, installing Debian's `package` with apt-get when it is missing and we run
/// as root (as `tests/corpus/make_corpus.sh` does for its tools).
pub fn require_tool(tool: &str, package: &str) -> anyhow::Result<PathBuf> {
    if let Some(found) = find_tool(tool) {
        return Ok(found);
    }
    let uid = Command::new("id").arg("-u").output()?;
    anyhow::ensure!(
        String::from_utf8_lossy(&uid.stdout).trim() == "0",
        "{tool} is missing: apt-get install {package}"
    );
    let installed = Command::new("sh")
        .args(["-c", &format!("apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {package} >/dev/null")])
        .status()?;
    anyhow::ensure!(installed.success(), "apt-get install {package} failed");
    find_tool(tool).ok_or_else(|| anyhow::anyhow!("{package} installed no {tool}"))
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Makes `path` and its contents readable by every user (nginx's workers drop root).
pub fn open_to_all(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if path.is_dir() { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            open_to_all(&entry?.path())?;
        }
    }
    Ok(())
}
