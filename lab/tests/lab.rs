//! Real labs, built as root: traffic through the router, coexistence, failure and teardown.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use qoelab_lab::registry::LabRecord;
use qoelab_lab::{Lab, LabError, NetNs, Route, Topology, admin, names, standard};

const TRANSFER_BYTES: usize = 12 * 1024 * 1024;

const BLOCK: usize = 64 * 1024;

/// A reproducible byte stream (xorshift) produced in 64 KiB blocks, so the receiver can
/// regenerate and check every byte.
struct Pattern {
    state: u64,
    block: Vec<u8>,
    pos: usize,
}

impl Pattern {
    fn new(seed: u64) -> Pattern {
        Pattern {
            state: seed,
            block: vec![0; BLOCK],
            pos: BLOCK,
        }
    }

    /// The next `n` bytes of the stream (n ≤ 64 KiB).
    fn take(&mut self, n: usize, out: &mut Vec<u8>) {
        out.clear();
        while out.len() < n {
            if self.pos == BLOCK {
                for chunk in self.block.chunks_mut(8) {
                    self.state ^= self.state << 13;
                    self.state ^= self.state >> 7;
                    self.state ^= self.state << 17;
                    chunk.copy_from_slice(&self.state.to_le_bytes());
                }
                self.pos = 0;
            }
            let k = (n - out.len()).min(BLOCK - self.pos);
            out.extend_from_slice(&self.block[self.pos..self.pos + k]);
            self.pos += k;
        }
    }
}

/// Frames seen on an interface: count, largest frame, total bytes.
#[derive(Debug, Default)]
struct FrameStats {
    frames: usize,
    max_len: usize,
    bytes: usize,
    dropped: u32,
}

/// Counts every frame on `ifname` inside `ns` (both directions) until `stop` is set. Returns
/// once the socket is ready.
fn watch_frames(
    ns: &NetNs,
    ifname: &str,
    stop: Arc<AtomicBool>,
) -> JoinHandle<io::Result<io::Result<FrameStats>>> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let ifname = ifname.to_string();
    let handle = ns
        .spawn_thread(move || -> io::Result<FrameStats> {
            let socket = packet_socket(&ifname);
            let _ = ready_tx.send(socket.as_ref().map(|_| ()).map_err(|e| e.to_string()));
            let socket = socket?;
            let mut buf = vec![0u8; 1 << 16];
            let mut stats = FrameStats::default();
            while !stop.load(Ordering::Relaxed) {
                // MSG_TRUNC makes recv return the frame's real length even if it were larger.
                let n = unsafe {
                    libc::recv(
                        socket.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_TRUNC,
                    )
                };
                if n < 0 {
                    let err = io::Error::last_os_error();
                    if err.kind() == io::ErrorKind::WouldBlock {
                        continue;
                    }
                    return Err(err);
                }
                stats.frames += 1;
                stats.bytes += n as usize;
                stats.max_len = stats.max_len.max(n as usize);
            }
            stats.dropped = packet_drops(&socket)?;
            Ok(stats)
        })
        .expect("start capture thread");
    ready_rx.recv().unwrap().expect("packet socket");
    handle
}

fn packet_socket(ifname: &str) -> io::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    let cname = std::ffi::CString::new(ifname).unwrap();
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = proto;
    addr.sll_ifindex = index as i32;
    let rc = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // A large buffer so that no frame is dropped while the transfer runs at full speed.
    let size: libc::c_int = 64 << 20;
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    Ok(socket)
}

/// Frames the kernel dropped for this packet socket.
fn packet_drops(socket: &OwnedFd) -> io::Result<u32> {
    let mut stats = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as u32;
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut stats as *mut libc::tpacket_stats).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stats.tp_drops)
}

/// Sends `bytes` of the pattern from the client to a server listening in the server node and
/// returns how many bytes the server received and whether every one matched.
fn transfer(lab: &Lab, bytes: usize, seed: u64) -> (usize, bool) {
    let listener = lab
        .server()
        .unwrap()
        .run(|| TcpListener::bind((standard::SERVER_ADDR, 0)))
        .unwrap()
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let receiver = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut expected = Pattern::new(seed);
        let (mut got, mut want) = (vec![0u8; BLOCK], Vec::new());
        let (mut total, mut intact) = (0, true);
        loop {
            let n = stream.read(&mut got).unwrap();
            if n == 0 {
                break (total, intact);
            }
            expected.take(n, &mut want);
            intact &= want[..] == got[..n];
            total += n;
        }
    });
    // The client side runs as an async task inside the client namespace.
    lab.client()
        .unwrap()
        .run_async(|| async move {
            use tokio::io::AsyncWriteExt;
            let server = SocketAddr::from((standard::SERVER_ADDR, port));
            let mut stream = tokio::net::TcpStream::connect(server).await.unwrap();
            let mut pattern = Pattern::new(seed);
            let mut buf = Vec::new();
            let mut sent = 0;
            while sent < bytes {
                pattern.take(BLOCK.min(bytes - sent), &mut buf);
                stream.write_all(&buf).await.unwrap();
                sent += buf.len();
            }
            stream.shutdown().await.unwrap();
        })
        .unwrap();
    receiver.join().unwrap()
}

#[test]
fn tcp_through_the_router_arrives_intact_in_wire_sized_frames() {
    let lab = Lab::standard(None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_frames(lab.router().unwrap(), &lab.uplink(), stop.clone());
    let (received, intact) = transfer(&lab, TRANSFER_BYTES, 0x9e37_79b9_7f4a_7c15);
    stop.store(true, Ordering::Relaxed);
    let frames = watcher.join().unwrap().unwrap().unwrap();

    assert_eq!(received, TRANSFER_BYTES);
    assert!(intact, "bytes were corrupted on the way");
    assert!(
        frames.max_len <= 1514,
        "frame of {} bytes seen on the router",
        frames.max_len
    );
    assert_eq!(
        frames.dropped, 0,
        "the capture dropped frames: the counts below are unreliable"
    );
    let min_data_frames = TRANSFER_BYTES / 1448;
    assert!(
        frames.frames > min_data_frames,
        "only {} frames seen",
        frames.frames
    );
    assert!(
        frames.bytes > TRANSFER_BYTES,
        "only {} bytes seen",
        frames.bytes
    );
    lab.teardown().unwrap();
}

#[test]
fn two_labs_at_once_do_not_collide() {
    let builders: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(|| Lab::standard(None).unwrap()))
        .collect();
    let labs: Vec<Lab> = builders.into_iter().map(|b| b.join().unwrap()).collect();
    assert_ne!(labs[0].name(), labs[1].name());
    let runs: Vec<_> = labs
        .iter()
        .enumerate()
        .map(|(i, lab)| transfer(lab, 1024 * 1024, i as u64 + 1))
        .collect();
    assert!(
        runs.iter().all(|&(n, ok)| n == 1024 * 1024 && ok),
        "{runs:?}"
    );
    let namespaces: Vec<String> = labs
        .iter()
        .flat_map(|l| ["client", "router", "server"].map(|n| l.ns(n).unwrap().name().to_string()))
        .collect();
    for lab in labs {
        lab.teardown().unwrap();
    }
    for ns in namespaces {
        assert!(!NetNs::exists(&ns), "{ns} survived teardown");
    }
}

#[test]
fn a_build_that_fails_half_way_leaves_nothing_behind() {
    let mut topology = Topology::standard();
    // Inside the lab space but on no connected subnet: the kernel refuses it after the
    // namespaces and links exist.
    topology.nodes[0].routes.push(Route {
        dst: "198.19.0.0/16".parse().unwrap(),
        via: Ipv4Addr::new(198, 19, 99, 1),
    });
    let name = names::random_lab_name();
    let err = Lab::build(topology, Some(&name)).unwrap_err().to_string();
    assert!(
        err.contains("add route 198.19.0.0/16 via 198.19.99.1"),
        "{err}"
    );
    for node in ["client", "router", "server"] {
        assert!(!NetNs::exists(&names::netns_name(&name, node)));
    }
    assert!(
        LabRecord::load(&name).unwrap().is_none(),
        "record of {name} left behind"
    );
}

#[test]
fn a_taken_name_is_refused_and_the_first_lab_survives() {
    let name = names::random_lab_name();
    let first = Lab::standard(Some(&name)).unwrap();
    let err = Lab::standard(Some(&name)).unwrap_err();
    assert!(matches!(err, LabError::NameTaken { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("qoelab lab down --name {name}"))
    );
    let (n, ok) = transfer(&first, 64 * 1024, 7);
    assert!(n == 64 * 1024 && ok);
    first.teardown().unwrap();
}

#[test]
fn dropping_a_lab_ends_its_processes_and_removes_it() {
    let (mut child, namespace) = {
        let lab = Lab::standard(None).unwrap();
        let child = lab
            .spawn(standard::SERVER, Command::new("sleep").arg("600"))
            .unwrap();
        let inside = std::fs::read_link(format!("/proc/{}/ns/net", child.id())).unwrap();
        let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
        assert_ne!(inside, mine, "the process did not enter the lab");
        (child, lab.server().unwrap().name().to_string())
    };
    assert!(!NetNs::exists(&namespace));
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
}

#[test]
fn status_reports_the_lab_as_built() {
    let lab = Lab::standard(None).unwrap();
    let labs = admin::status().unwrap();
    let mine = labs.iter().find(|l| l.record.name == lab.name()).unwrap();
    assert!(mine.in_use);
    let router = mine.nodes.iter().find(|n| n.node == "router").unwrap();
    assert!(router.present);
    let wan = router
        .ifaces
        .iter()
        .find(|i| i.name == lab.uplink())
        .unwrap();
    assert_eq!(wan.addr, Some("198.18.2.1/24".parse().unwrap()));
    assert!(wan.up && wan.offloads_off && wan.mtu == 1500, "{wan:?}");
    lab.teardown().unwrap();
}

/// Run after the whole suite (see scripts/test.sh): no namespace or link of ours may remain,
/// other than labs owned by processes still running.
#[test]
#[ignore = "run after the whole suite by scripts/test.sh"]
fn no_lab_leftovers_remain() {
    let left = admin::leftovers().unwrap();
    assert!(left.is_empty(), "leftovers: {left:?}");
}
