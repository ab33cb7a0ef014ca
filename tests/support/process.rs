//! Running a program to its end, as the command-line tests run `graphyte`.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::wait_until;

/// How a run of a program ended.
pub struct Finished {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub took: Duration,
}

/// Runs `command` with `input` on stdin (written by a thread of its own, so a full pipe
/// cannot stall the run), or nothing, and waits for it to exit; kills it and fails after
/// `limit`.
pub fn run_to_end(mut command: Command, input: Option<Vec<u8>>, limit: Duration) -> Finished {
    command.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the program");
    let writer = input.map(|bytes| {
        let mut stdin = child.stdin.take().unwrap();
        // A run that stops reading early (--strict, an unreachable Carbon) closes the pipe:
        // the write error is expected then.
        thread::spawn(move || drop(stdin.write_all(&bytes)))
    });
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).unwrap();
            bytes
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().unwrap()));
    let stderr = read_all(Box::new(child.stderr.take().unwrap()));
    let mut status = None;
    let exited = wait_until(limit, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the program did not exit within {limit:?}: {command:?}");
    }
    let took = started.elapsed();
    if let Some(writer) = writer {
        writer.join().unwrap();
    }
    let status = status.unwrap();
    Finished {
        code: status
            .code()
            .unwrap_or_else(|| panic!("the program was killed by a signal: {status:?}")),
        stdout: stdout.join().unwrap(),
        stderr: String::from_utf8(stderr.join().unwrap()).expect("stderr is UTF-8"),
        took,
    }
}
