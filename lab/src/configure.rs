//! Netlink and sysctl work that builds a lab: veth pairs created straight into their
//! namespaces, addresses, links up, routes, forwarding, offloads off.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};

use futures::TryStreamExt;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{LabError, Result, netlink_io};
use crate::netns::NetNs;
use crate::offload::{self, Offload};
use crate::topology::{Endpoint, Node};

/// Opens a netlink connection in the calling thread's namespace and runs `work` with it.
pub(crate) async fn with_netlink<T, F, Fut>(work: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|e| LabError::os("open a netlink socket", e))?;
    let task = tokio::spawn(connection);
    let result = work(handle).await;
    task.abort();
    result
}

/// Creates the veth pair `a_name` (in `a`) ↔ `b_name` (in `b`), both with `mtu`.
///
/// The pair is created from inside `a` with its peer placed directly into `b`, so it never
/// appears in the host's namespace.
pub fn create_veth(a: &NetNs, a_name: &str, b: &NetNs, b_name: &str, mtu: u32) -> Result<()> {
    let peer_fd = b.as_fd().as_raw_fd();
    let what = || {
        format!(
            "create veth pair {a_name} ({}) – {b_name} ({})",
            a.name(),
            b.name()
        )
    };
    a.run_async(|| {
        with_netlink(|handle| async move {
            let peer = LinkMessageBuilder::<LinkUnspec>::new()
                .name(b_name.to_string())
                .mtu(mtu)
                .setns_by_fd(peer_fd)
                .build();
            let message = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
                .name(a_name.to_string())
                .mtu(mtu)
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                .build();
            handle
                .link()
                .add(message)
                .execute()
                .await
                .map_err(|e| classify_veth_error(netlink_io(e), &what()))
        })
    })
    .map_err(|e| LabError::os(what(), e))?
}

fn classify_veth_error(err: io::Error, what: &str) -> LabError {
    match err.raw_os_error() {
        Some(libc::EOPNOTSUPP) => LabError::NoVeth { source: err },
        _ => LabError::os(what, err),
    }
}

/// Configures `node` from inside its namespace: loopback up, IPv6 off (labs are IPv4-only and
/// quiet), each interface's address, offloads off and link up, forwarding, routes.
pub fn configure_node(ns: &NetNs, node: &Node, ends: &[(String, &Endpoint)]) -> Result<()> {
    ns.run_async(|| {
        with_netlink(|handle| async move {
            let at = |what: String| format!("{what} in {}", ns.name());
            set_up(&handle, "lo")
                .await
                .map_err(|e| LabError::os(at("set lo up".into()), e))?;
            for key in ["all", "default"] {
                sysctl(&format!("net/ipv6/conf/{key}/disable_ipv6"), "1")?;
            }
            for (ifname, end) in ends {
                let index = link_index(&handle, ifname)
                    .await
                    .map_err(|e| LabError::os(at(format!("find interface {ifname}")), e))?;
                handle
                    .address()
                    .add(index, IpAddr::V4(end.addr.addr()), end.addr.prefix_len())
                    .execute()
                    .await
                    .map_err(|e| {
                        LabError::os(
                            at(format!("add address {} to {ifname}", end.addr)),
                            netlink_io(e),
                        )
                    })?;
                for feature in Offload::ALL {
                    offload::set(ifname, feature, false).map_err(|e| {
                        LabError::os(at(format!("turn {feature:?} off on {ifname}")), e)
                    })?;
                }
                set_up(&handle, ifname)
                    .await
                    .map_err(|e| LabError::os(at(format!("set {ifname} up")), e))?;
            }
            sysctl(
                "net/ipv4/ip_forward",
                if node.forwarding { "1" } else { "0" },
            )?;
            for route in &node.routes {
                let message = RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                    .destination_prefix(route.dst.addr(), route.dst.prefix_len())
                    .gateway(route.via)
                    .build();
                handle.route().add(message).execute().await.map_err(|e| {
                    LabError::os(
                        at(format!("add route {} via {}", route.dst, route.via)),
                        netlink_io(e),
                    )
                })?;
            }
            Ok(())
        })
    })
    .map_err(|e| LabError::os(format!("enter namespace {}", ns.name()), e))?
}

/// The index of interface `name` in the handle's namespace.
pub async fn link_index(handle: &Handle, name: &str) -> io::Result<u32> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await.map_err(netlink_io)? {
        Some(link) => Ok(link.header.index),
        None => Err(io::Error::new(io::ErrorKind::NotFound, "no such interface")),
    }
}

async fn set_up(handle: &Handle, name: &str) -> io::Result<()> {
    let index = link_index(handle, name).await?;
    let message = LinkUnspec::new_with_index(index).up().build();
    handle
        .link()
        .set(message)
        .execute()
        .await
        .map_err(netlink_io)
}

/// Writes a sysctl of the calling thread's network namespace, e.g. `net/ipv4/ip_forward`.
fn sysctl(key: &str, value: &str) -> Result<()> {
    fs::write(format!("/proc/sys/{key}"), value)
        .map_err(|e| LabError::os(format!("write sysctl {key}={value}"), e))
}

/// An interface as listed by netlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// MTU in bytes.
    pub mtu: u32,
    /// Whether it is administratively up.
    pub up: bool,
}

/// The interfaces of the handle's namespace.
pub async fn list_links(handle: &Handle) -> io::Result<Vec<LinkInfo>> {
    let mut links = handle.link().get().execute();
    let mut out = Vec::new();
    while let Some(link) = links.try_next().await.map_err(netlink_io)? {
        let mut info = LinkInfo {
            index: link.header.index,
            name: String::new(),
            mtu: 0,
            up: link.header.flags.contains(LinkFlags::Up),
        };
        for attr in &link.attributes {
            match attr {
                LinkAttribute::IfName(name) => info.name = name.clone(),
                LinkAttribute::Mtu(mtu) => info.mtu = *mtu,
                _ => {}
            }
        }
        out.push(info);
    }
    Ok(out)
}
