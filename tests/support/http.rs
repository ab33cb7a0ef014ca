//! A loopback HTTP server whose answers a test writes byte for byte: for what a real server
//! will not send (hostile, truncated or silent answers), and to see each request exactly.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// A request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// How the server answers a request.
pub enum Answer {
    /// These bytes, then the connection is closed.
    Raw(Vec<u8>),
    /// Nothing, ever: the connection stays open until the server is dropped.
    Silent,
    /// Whatever the test writes to the connection, on the server's thread for it.
    Stream(Box<dyn FnOnce(&mut TcpStream) + Send>),
}

/// A complete answer with a status, a content type and a body.
pub fn answer(status: u16, content_type: &str, body: &[u8]) -> Answer {
    let mut raw = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    Answer::Raw(raw)
}

pub struct HttpStub {
    pub url: String,
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl HttpStub {
    /// Serves on a free loopback port, answering each request with `answer`.
    pub fn start(answer: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> HttpStub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let held = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let answer = Arc::new(answer);
        let (seen, kept, stopped) = (requests.clone(), held.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (answer, seen, kept) = (answer.clone(), seen.clone(), kept.clone());
                thread::spawn(move || serve(stream, &*answer, &seen, &kept));
            }
        });
        HttpStub {
            url: format!("http://127.0.0.1:{port}"),
            port,
            requests,
            held,
            stop,
        }
    }

    /// The requests read so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for HttpStub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        self.held.lock().unwrap().clear();
    }
}

fn serve(
    stream: TcpStream,
    answer: &(dyn Fn(&Request) -> Answer + Send + Sync),
    seen: &Mutex<Vec<Request>>,
    held: &Mutex<Vec<TcpStream>>,
) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let Some(request) = read_request(&mut reader) else {
        return;
    };
    seen.lock().unwrap().push(request.clone());
    match answer(&request) {
        Answer::Raw(bytes) => {
            let _ = writer.write_all(&bytes);
            let _ = writer.flush();
        }
        Answer::Silent => held.lock().unwrap().push(writer),
        Answer::Stream(write) => write(&mut writer),
    }
}

fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (key, value) = line.split_once(':')?;
        headers.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    let len = headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}
