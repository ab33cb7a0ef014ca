//! Dry run: the exact bytes a synchronous sender would write, kept instead of sent.

use std::fmt;
use std::io;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::builder::Builder;
use crate::error::Error;
use crate::sender::Sender;
use crate::transport::{SendSocket, Transport};

/// A synchronous [`Sender`] that keeps what it would write instead of sending it: the exact
/// bytes a synchronous sender of the same configuration writes, frame by frame (a chunk of
/// plaintext lines, or one pickle frame), made by the same checks, encoder and delivery code.
/// Nothing touches the network. Each send is its own frame and a batch is written in frames
/// of up to the batch size, as in synchronous mode; a background sender would pack
/// everything queued within an interval into its frames. Made by [`Builder::dry_run`].
///
/// ```
/// use graphyte::{Protocol, Sender};
/// let dry = Sender::builder("unused").prefix("app").dry_run()?;
/// dry.sender().send_at("requests.ok", 42, 1_700_000_000);
/// assert_eq!(dry.take(), b"app.requests.ok 42 1700000000\n");
///
/// let dry = Sender::builder("unused").protocol(Protocol::Pickle).dry_run()?;
/// dry.sender().send_batch_at([("a", 1), ("b", 2)], 1_700_000_000);
/// let frames = dry.take_frames();
/// assert_eq!(frames.len(), 1);
/// assert_eq!(&frames[0][..4], (frames[0].len() as u32 - 4).to_be_bytes());
/// # Ok::<(), graphyte::Error>(())
/// ```
pub struct DryRun {
    sender: Sender,
    written: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl fmt::Debug for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DryRun")
            .field("frames_kept", &self.written.lock().len())
            .finish_non_exhaustive()
    }
}

impl DryRun {
    /// The sender to send through. Its [`stats`](Sender::stats) count what it kept as sent.
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// Takes the frames kept so far, oldest first: each is what one write would have carried.
    ///
    /// ```
    /// let dry = graphyte::Sender::builder("unused").dry_run()?;
    /// dry.sender().send_batch_at([("a", 1), ("b", 2)], 1_700_000_000);
    /// assert_eq!(dry.take_frames(), [b"a 1 1700000000\nb 2 1700000000\n".to_vec()]);
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn take_frames(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.written.lock())
    }

    /// Takes the bytes kept so far, as one stream in the order they would have been written.
    ///
    /// ```
    /// let dry = graphyte::Sender::builder("unused").dry_run()?;
    /// dry.sender().send_at("a.b", 1, 1_700_000_000);
    /// assert_eq!(dry.take(), b"a.b 1 1700000000\n");
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn take(&self) -> Vec<u8> {
        self.take_frames().concat()
    }
}

impl Builder {
    /// Builds a [`DryRun`]: a synchronous sender with this configuration (prefix, tags,
    /// protocol, frame size, and for UDP the datagram size) whose socket keeps every frame
    /// instead of sending it. Host, port and interval are unused; a custom socket is replaced,
    /// so the frames are those of the configured transport (and it is checked like one:
    /// pickle over UDP is refused).
    ///
    /// # Errors
    ///
    /// What [`build`](Builder::build) refuses: an unusable setting, a bad prefix or default
    /// tag.
    ///
    /// ```
    /// let dry = graphyte::Sender::builder("unused").tag("env", "prod").dry_run()?;
    /// dry.sender().send_at("up", 1, 1_700_000_000);
    /// assert_eq!(dry.take(), b"up;env=prod 1 1700000000\n");
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn dry_run(mut self) -> Result<DryRun, Error> {
        self.socket = None;
        self.check()?;
        let written = Arc::new(Mutex::new(Vec::new()));
        let max_payload = match self.transport {
            Transport::Udp => Some(self.max_datagram),
            _ => None,
        };
        let sender = self
            .synchronous()
            .socket(Keep {
                written: Arc::clone(&written),
                max_payload,
            })
            .build()?;
        Ok(DryRun { sender, written })
    }
}

/// A socket that keeps what it is given, one frame per call.
struct Keep {
    written: Arc<Mutex<Vec<Vec<u8>>>>,
    max_payload: Option<usize>,
}

impl SendSocket for Keep {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.lock().push(buf.to_vec());
        Ok(buf.len())
    }

    fn max_payload(&self) -> Option<usize> {
        self.max_payload
    }
}
