//! A real graphite-web (Debian's, under Django's runserver) next to the private carbon-cache:
//! started by `scripts/graphite-web`, stopped (by PID) when dropped.

use super::{Carbon, unused_port, wait_until};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// carbon-cache and graphite-web together: carbon registers tags in graphite-web, and
/// graphite-web reads carbon's files and cache.
pub struct Graphite {
    pub carbon: Carbon,
    pub web: GraphiteWeb,
}

impl Graphite {
    /// Starts carbon-cache and a graphite-web reading it, with no authentication; fails the test
    /// loudly if either cannot start.
    pub fn start() -> Graphite {
        Self::start_inner(None)
    }

    /// As `start`, with every request to graphite-web needing HTTP Basic auth with exactly these
    /// credentials (401 with `WWW-Authenticate: Basic` otherwise). Carbon still registers tags:
    /// it posts them to a secret path the server lets through without credentials.
    pub fn start_with_auth(user: &str, password: &str) -> Graphite {
        Self::start_inner(Some((user.to_owned(), password.to_owned())))
    }

    fn start_inner(auth: Option<(String, String)>) -> Graphite {
        // graphite-web needs carbon's cache query port, carbon needs graphite-web's URL: choose
        // graphite-web's port first. Another process may take it meanwhile; then try another.
        let mut failure = String::new();
        for _ in 0..3 {
            let port = unused_port();
            let mut graphite_url = format!("http://127.0.0.1:{port}");
            if auth.is_some() {
                graphite_url.push_str(&format!("/carbon-{}", secret()));
            }
            let carbon = Carbon::start_with_env(&[("GRAPHITE_URL", &graphite_url)]);
            match GraphiteWeb::try_start(&carbon, Some(port), auth.clone()) {
                Ok(web) => return Graphite { carbon, web },
                Err(stderr) if stderr.contains("port is already in use") => failure = stderr,
                Err(stderr) => fail(&stderr),
            }
        }
        fail(&failure)
    }

    /// Waits until graphite-web's tag index finds series for `expr` (such as `k=v`; carbon
    /// registers a series about a second after its first point), and returns
    /// `/tags/findSeries`'s answer (a JSON list of series names).
    pub fn wait_for_tagged(&self, expr: &str) -> String {
        let path = format!("/tags/findSeries?expr={}", encode(expr));
        self.wait_for(&path, &format!("series tagged {expr}"))
    }

    /// Waits until graphite-web finds metrics for `query` (a name or a glob), which it does once
    /// carbon created their whisper files (about a second after the first point), and returns
    /// `/metrics/find`'s answer (JSON).
    pub fn wait_for_metric(&self, query: &str) -> String {
        let path = format!("/metrics/find?query={}", encode(query));
        self.wait_for(&path, &format!("metric {query}"))
    }

    fn wait_for(&self, path: &str, what: &str) -> String {
        let mut last = (0, String::new());
        let found = wait_until(Duration::from_secs(15), || {
            last = self.web.get(path);
            last.0 == 200 && last.1.trim() != "[]"
        });
        assert!(
            found,
            "graphite-web did not find {what} in 15 s: GET {path} gave {} {}\n\
             carbon log:\n{}\ngraphite-web log:\n{}",
            last.0,
            last.1,
            self.carbon.log(),
            self.web.log()
        );
        last.1
    }
}

/// A graphite-web of our own on 127.0.0.1, reading one carbon-cache's data.
pub struct GraphiteWeb {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    pub port: u16,
    /// The credentials every request needs, if any.
    pub auth: Option<(String, String)>,
    dir: PathBuf,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/graphite-web")
}

fn fail(stderr: &str) -> ! {
    panic!("graphite-web did not start (install it with `scripts/graphite-web install`):\n{stderr}")
}

/// An unguessable enough path segment for carbon's tag registrations (tests only).
fn secret() -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mixed = (nanos as u64)
        ^ ((std::process::id() as u64) << 32)
        ^ (SEQ.fetch_add(1, Ordering::Relaxed) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!("{:016x}", mixed.wrapping_mul(0xbf58_476d_1ce4_e5b9))
}

impl GraphiteWeb {
    /// Starts graphite-web reading `carbon`'s whisper files and cache, on a free port, without
    /// authentication. Carbon's tags are not registered here unless carbon was started with
    /// `GRAPHITE_URL` pointing at this port: use `Graphite::start` for that.
    pub fn start(carbon: &Carbon) -> GraphiteWeb {
        Self::try_start(carbon, None, None).unwrap_or_else(|stderr| fail(&stderr))
    }

    /// Runs `scripts/graphite-web start`; its stderr if it failed.
    fn try_start(
        carbon: &Carbon,
        port: Option<u16>,
        auth: Option<(String, String)>,
    ) -> Result<GraphiteWeb, String> {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "graphyte-graphite-web-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let mut command = Command::new(script());
        command.arg("start").arg(&dir).arg(&carbon.dir);
        if let Some(port) = port {
            command.arg(port.to_string());
        }
        command.env_remove("GRAPHITE_WEB_AUTH");
        // A killed test run leaves no graphite-web behind.
        command.env("GRAPHYTE_WATCH_PID", std::process::id().to_string());
        if let Some((user, password)) = &auth {
            command.env("GRAPHITE_WEB_AUTH", format!("{user}:{password}"));
        }
        let out = command
            .output()
            .map_err(|err| format!("running {}: {err}", script().display()))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let env = String::from_utf8(out.stdout).unwrap();
        let value = |key: &str| -> String {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{key} missing from {env}"))
                .to_owned()
        };
        Ok(GraphiteWeb {
            url: value("URL"),
            port: value("PORT").parse().unwrap(),
            auth,
            dir,
        })
    }

    /// `GET path` (such as `/render?target=a.b&format=json`, already URL-encoded), with the
    /// credentials if any: the status and the body. Plain std HTTP/1.0, for waiting on the
    /// server in tests; not the client under test.
    pub fn get(&self, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|err| panic!("connecting to graphite-web at {}: {err}", self.url));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n", self.port);
        if let Some((user, password)) = &self.auth {
            request.push_str(&format!(
                "Authorization: Basic {}\r\n",
                base64(format!("{user}:{password}").as_bytes())
            ));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .unwrap_or_else(|err| panic!("reading graphite-web's answer to {path}: {err}"));
        let response = String::from_utf8_lossy(&response);
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP answer to {path}: {response:?}"));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        (status, body.to_owned())
    }

    /// The server's request log and graphite-web's exception log.
    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join("log").join(name));
        format!(
            "{}{}",
            read("console.log").unwrap_or_default(),
            read("exception.log").unwrap_or_default()
        )
    }
}

impl Drop for GraphiteWeb {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Standard base64 with padding, for the Authorization header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | ((b as u32) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
