//! What the tests of the long-running commands (`serve`, `up`) share: a plain HTTP client and
//! a guard that stops the server if a test fails before stopping it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// One HTTP/1.1 request over a fresh connection; returns the status line and the body.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        unchunk(body)
    } else {
        body.to_string()
    };
    Some((head.lines().next()?.to_string(), body))
}

/// The body of a chunked response.
fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process, stopped (see its `Drop`) if the test fails before it stops it.
pub struct Server(pub Child);

impl Server {
    /// Waits until `/healthz` on `port` answers 200, at most `limit`.
    pub fn wait_healthy(&mut self, port: u16, limit: Duration) {
        let started = Instant::now();
        while http(port, "GET", "/healthz", "").is_none_or(|(status, _)| !status.contains("200")) {
            if let Some(exit) = self.0.try_wait().unwrap() {
                panic!("the server ended before it served: {exit}");
            }
            assert!(started.elapsed() < limit, "the server did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `signal` (e.g. `-INT`) and waits at most `limit` for the process to end.
    pub fn stop(&mut self, signal: &str, limit: Duration) -> std::process::ExitStatus {
        Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .unwrap();
        let stopping = Instant::now();
        loop {
            if let Some(exit) = self.0.try_wait().unwrap() {
                return exit;
            }
            assert!(
                stopping.elapsed() < limit,
                "the server ignored {signal} for {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    /// A test that fails first asks the server to stop as a user would (SIGTERM: it restores
    /// what it shaped and removes its lab), and kills it only if it does not end in time.
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let asked = Instant::now();
            while matches!(self.0.try_wait(), Ok(None)) && asked.elapsed() < Duration::from_secs(30)
            {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
