//! A blocking rtnetlink socket inside a network namespace: batches of requests in one write
//! with their acks read afterwards, and dumps.
//!
//! The socket is created on a thread that entered the namespace, so it stays there for its
//! whole life and can then be used from any thread.

use std::io;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use qoelab_lab::NetNs;

use crate::wire::nlas;

/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
const NLMSG_DONE: u16 = 3;
/// `NLMSGERR_ATTR_MSG`: the extended ack's text.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Most bytes written at once (the kernel refuses writes near the socket's send buffer size).
const MAX_WRITE: usize = 64 * 1024;

/// An error the kernel answered a request with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}", std::io::Error::from_raw_os_error(*.errno), .message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())]
pub struct KernelError {
    /// The errno, positive.
    pub errno: i32,
    /// The kernel's extended-ack text, if it sent one.
    pub message: Option<String>,
}

/// One request of a batch: a message and its `NLM_F_*` flags besides REQUEST and ACK.
#[derive(Debug, Clone)]
pub struct Request {
    /// The message.
    pub message: RouteNetlinkMessage,
    /// Extra flags: CREATE, EXCL, REPLACE.
    pub flags: u16,
}

/// A route-netlink socket bound inside one network namespace.
#[derive(Debug)]
pub struct Rtnl {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    /// Opens a socket in the namespace `netns` (an iproute2 name), or in the caller's own
    /// namespace if `None`.
    pub fn open(netns: Option<&str>) -> io::Result<Rtnl> {
        let socket = match netns {
            None => new_socket()?,
            Some(name) => NetNs::open(name)?.run(new_socket)??,
        };
        Ok(Rtnl {
            socket,
            seq: 0,
            buf: vec![0; 256 * 1024],
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn encode(&mut self, message: RouteNetlinkMessage, flags: u16, out: &mut Vec<u8>) -> u32 {
        let seq = self.next_seq();
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let start = out.len();
        out.resize(start + packet.buffer_len(), 0);
        packet.serialize(&mut out[start..]);
        seq
    }

    /// Sends `requests` in as few writes as possible and returns one result per request.
    ///
    /// Only the last request of each write asks for an ack: the kernel handles the requests of
    /// a write in order, goes on after a failed one, and answers every failure with an error
    /// message whether asked or not, so once the last request's ack (or error) is read, every
    /// earlier failure has been read too. This saves reading one ack per request.
    pub fn execute(&mut self, requests: Vec<Request>) -> io::Result<Vec<Result<(), KernelError>>> {
        let count = requests.len();
        let mut results = vec![Ok(()); count];
        let mut out = Vec::with_capacity(count.min(1024) * 96);
        let mut chunk_first = 0;
        let mut first_seq = 0;
        for (i, request) in requests.into_iter().enumerate() {
            let start = out.len();
            let seq = self.encode(request.message, request.flags, &mut out);
            if i == chunk_first {
                first_seq = seq;
            }
            if out.len() >= MAX_WRITE - 4096 || i + 1 == count {
                // NLM_F_ACK on the chunk's last message: the flags are bytes 6..8 of its header.
                let flags = u16::from_ne_bytes([out[start + 6], out[start + 7]]) | NLM_F_ACK;
                out[start + 6..start + 8].copy_from_slice(&flags.to_ne_bytes());
                self.socket.send(&out, 0)?;
                out.clear();
                let chunk = &mut results[chunk_first..=i];
                self.read_until_acked(first_seq, seq, chunk)?;
                chunk_first = i + 1;
            }
        }
        Ok(results)
    }

    /// Reads answers to the requests numbered `first_seq..=last_seq` (whose results are
    /// `results`, in order) until the last one's.
    fn read_until_acked(
        &mut self,
        first_seq: u32,
        last_seq: u32,
        results: &mut [Result<(), KernelError>],
    ) -> io::Result<()> {
        loop {
            let n = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut done = false;
            for (kind, seq, payload) in messages(&self.buf[..n]) {
                let index = seq.wrapping_sub(first_seq) as usize;
                if kind != NLMSG_ERROR || index >= results.len() {
                    continue;
                }
                results[index] = parse_ack(payload);
                done |= seq == last_seq;
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Sends a dump request and returns the raw payload of every message of the answer.
    pub fn dump(&mut self, message: RouteNetlinkMessage) -> io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::with_capacity(64);
        let seq = self.encode(message, NLM_F_DUMP, &mut out);
        self.socket.send(&out, 0)?;
        let mut answer = Vec::new();
        loop {
            let n = self.socket.recv(&mut &mut self.buf[..], 0)?;
            for (kind, msg_seq, payload) in messages(&self.buf[..n]) {
                if msg_seq != seq {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(answer),
                    NLMSG_ERROR => {
                        return match parse_ack(payload) {
                            Ok(()) => Ok(answer),
                            Err(err) => Err(io::Error::from_raw_os_error(err.errno)),
                        };
                    }
                    _ => answer.push(payload.to_vec()),
                }
            }
        }
    }
}

fn new_socket() -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind(&SocketAddr::new(0, 0))?;
    socket.set_ext_ack(true)?;
    socket.set_cap_ack(true)?;
    // Dumps of qdiscs then honour the interface index of the request.
    socket.set_netlink_get_strict_chk(true)?;
    socket.set_rx_buf_sz(1 << 20)?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}

/// The messages in a datagram as (type, sequence number, payload after the header).
fn messages(mut bytes: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
    std::iter::from_fn(move || {
        if bytes.len() < 16 {
            return None;
        }
        let len = u32::from_ne_bytes(bytes[0..4].try_into().ok()?) as usize;
        if len < 16 || len > bytes.len() {
            return None;
        }
        let kind = u16::from_ne_bytes(bytes[4..6].try_into().ok()?);
        let seq = u32::from_ne_bytes(bytes[8..12].try_into().ok()?);
        let payload = &bytes[16..len];
        bytes = &bytes[((len + 3) & !3).min(bytes.len())..];
        Some((kind, seq, payload))
    })
}

/// An `NLMSG_ERROR` payload: the error code, the request's header (capped acks), then the
/// extended-ack attributes.
fn parse_ack(payload: &[u8]) -> Result<(), KernelError> {
    let code = payload
        .get(0..4)
        .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
        .unwrap_or(-libc::EBADMSG);
    if code == 0 {
        return Ok(());
    }
    let message = payload.get(20..).and_then(|tlvs| {
        nlas(tlvs)
            .find(|(kind, _)| *kind == NLMSGERR_ATTR_MSG)
            .map(|(_, text)| {
                String::from_utf8_lossy(text)
                    .trim_end_matches('\0')
                    .to_string()
            })
    });
    Err(KernelError {
        errno: -code,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_carry_the_errno_and_the_kernel_text() {
        assert_eq!(parse_ack(&[0; 20]), Ok(()));
        let mut payload = (-libc::ENOENT).to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0; 16]);
        crate::wire::push_nla(
            &mut payload,
            NLMSGERR_ATTR_MSG,
            b"Specified qdisc kind is unknown\0",
        );
        let err = parse_ack(&payload).unwrap_err();
        assert_eq!(err.errno, libc::ENOENT);
        assert_eq!(
            err.message.as_deref(),
            Some("Specified qdisc kind is unknown")
        );
        assert!(err.to_string().contains("kind is unknown"), "{err}");
    }

    #[test]
    fn datagrams_split_into_messages() {
        let mut bytes = Vec::new();
        for (kind, seq) in [(NLMSG_ERROR, 7u32), (NLMSG_DONE, 8)] {
            bytes.extend_from_slice(&20u32.to_ne_bytes());
            bytes.extend_from_slice(&kind.to_ne_bytes());
            bytes.extend_from_slice(&0u16.to_ne_bytes());
            bytes.extend_from_slice(&seq.to_ne_bytes());
            bytes.extend_from_slice(&0u32.to_ne_bytes());
            bytes.extend_from_slice(&[0; 4]);
        }
        let got: Vec<(u16, u32)> = messages(&bytes).map(|(k, s, _)| (k, s)).collect();
        assert_eq!(got, [(NLMSG_ERROR, 7), (NLMSG_DONE, 8)]);
        assert_eq!(messages(&bytes[..10]).count(), 0);
    }
}
