//! Process orchestration: the bench re-executes itself as its server processes, reads each
//! one's "ready" line (bound address and its development certificate) from the child's
//! stdout, and kills them all when the [`Children`] guard drops (normal end, error or
//! panic). A server also exits by itself when its stdin closes, so it never outlives a
//! bench that was killed outright.

use crate::keys::{decode_hex, encode_hex};
use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// First word of the line a server prints once it listens.
pub const READY: &str = "SHOAL-BENCH-READY";

/// What a server announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReady {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its (development, self-signed) certificate in DER, for the client to trust.
    pub cert_der: Vec<u8>,
}

impl ServerReady {
    /// The line a server prints: `SHOAL-BENCH-READY <addr> <cert DER as hex>`.
    pub fn line(&self) -> String {
        format!("{READY} {} {}", self.addr, encode_hex(&self.cert_der))
    }

    /// Parses [`ServerReady::line`]'s output.
    pub fn parse(line: &str) -> Option<Self> {
        let mut it = line.split_whitespace();
        if it.next()? != READY {
            return None;
        }
        let addr = it.next()?.parse().ok()?;
        let cert_der = decode_hex(it.next()?).ok()?;
        it.next()
            .is_none()
            .then_some(ServerReady { addr, cert_der })
    }
}

/// Child processes killed (and reaped) on drop.
#[derive(Debug, Default)]
pub struct Children {
    children: Vec<Child>,
}

impl Children {
    /// No children yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts this executable again with `args` and waits (at most `timeout`) for its
    /// ready line. The child is owned by the guard from the moment it exists.
    pub fn spawn_server(&mut self, args: &[String], timeout: Duration) -> io::Result<ServerReady> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take();
        let pid = child.id();
        self.children.push(child);
        let stdout = stdout.ok_or_else(|| io::Error::other("child has no stdout"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(ready) = ServerReady::parse(&line) {
                    let _ = tx.send(ready);
                    break;
                }
                eprintln!("[server {pid}] {line}");
            }
            // Keep draining so the child never blocks on a full pipe.
            for line in lines.map_while(Result::ok) {
                eprintln!("[server {pid}] {line}");
            }
        });
        rx.recv_timeout(timeout).map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("server process {pid} did not report ready within {timeout:?}"),
            )
        })
    }

    /// How many children are running.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}

/// For server processes: exit as soon as stdin reaches end of file (the parent is gone or
/// closed it).
pub fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut buf = [0u8; 64];
        let mut stdin = io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_round_trips() {
        let r = ServerReady {
            addr: "127.0.0.1:4433".parse().unwrap(),
            cert_der: vec![0x30, 0x82, 1, 2, 255],
        };
        assert_eq!(ServerReady::parse(&r.line()), Some(r.clone()));
        assert_eq!(ServerReady::parse("hello"), None);
        assert_eq!(ServerReady::parse(&format!("{} extra", r.line())), None);
    }
}
