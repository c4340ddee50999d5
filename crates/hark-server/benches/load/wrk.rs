//! wrk (Debian's `wrk`) as the load generator: the same C client for every server measured.

use std::path::Path;
use std::process::Command;

/// Prints what wrk measured on one line, in numbers (latencies in microseconds).
const SUMMARY_SCRIPT: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk-summary %.0f %.0f %.0f %.0f %.0f %.0f\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"#;

/// One wrk run.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Runs wrk against `url` with `connections` connections on two threads for `seconds`, sending
/// `headers`. Fails if any request failed or answered other than 2xx/3xx.
pub fn run(
    url: &str,
    headers: &[String],
    connections: u32,
    seconds: u64,
    scratch: &Path,
) -> anyhow::Result<Measured> {
    let wrk = super::require_tool("wrk", "wrk")?;
    let script = scratch.join("summary.lua");
    std::fs::write(&script, SUMMARY_SCRIPT)?;
    let mut command = Command::new(wrk);
    command
        .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .arg("-s")
        .arg(&script);
    for header in headers {
        command.args(["-H", header]);
    }
    let output = command.arg(url).output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "wrk failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let numbers: Vec<f64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("wrk-summary "))
        .ok_or_else(|| anyhow::anyhow!("wrk printed no summary: {stdout}"))?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let [requests, micros, p50, p99, bad_status, socket_errors] = numbers[..] else {
        anyhow::bail!("unexpected wrk summary: {stdout}");
    };
    anyhow::ensure!(
        bad_status == 0.0 && socket_errors == 0.0,
        "{url}: {bad_status} answers were not 2xx/3xx and {socket_errors} requests failed"
    );
    Ok(Measured {
        requests_per_second: requests / (micros / 1e6),
        p50_ms: p50 / 1000.0,
        p99_ms: p99 / 1000.0,
    })
}
