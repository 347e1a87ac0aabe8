//! The tc objects the shaper programs (qdiscs, HTB classes, u32 filters, IFB links), as
//! requests to send and as read back from dumps.
//!
//! Handles: everything we create lives in our handle range. The root HTB qdisc of a shaped
//! device is `7100:`, its root class `7100:1`, the default class `7100:2`, analytic classes
//! `7100:3` and up, and the leaf qdisc of class `7100:N` is `(7200+N):`. The u32 filters of
//! class N sit at priority 2N (IPv4) and 2N+1 (IPv6); the ingress redirect at priority
//! [`INGRESS_PRIO`].

use netlink_packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::tc::{
    TcAction, TcActionAttribute, TcActionMirrorOption, TcActionOption, TcActionType, TcAttribute,
    TcFilterU32Option, TcHandle, TcHeader, TcMessage, TcMirror, TcMirrorActionType, TcOption,
    TcU32Key, TcU32Selector, TcU32SelectorFlags,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::netlink::Request;
use crate::wire::{self, Counters, TCA_KIND, TCA_OPTIONS, TCA_STATS2, U32Entry, nlas};

/// Major number of our root qdiscs.
pub const ROOT_MAJOR: u16 = 0x7100;
/// First major number of our leaf qdiscs (plus the class minor).
pub const LEAF_MAJOR_BASE: u16 = 0x7200;
/// Last major number of our handle range.
pub const LAST_MAJOR: u16 = 0x7fff;
/// Minor of the root class.
pub const ROOT_CLASS: u16 = 1;
/// Minor of the default class.
pub const DEFAULT_CLASS: u16 = 2;
/// Minor of the first analytic class.
pub const FIRST_CLASS: u16 = 3;
/// Highest class minor: its leaf major must stay in our range.
pub const LAST_CLASS: u16 = LAST_MAJOR - LEAF_MAJOR_BASE;
/// Priority of our ingress redirect filter.
pub const INGRESS_PRIO: u16 = 0x7100;
/// `TC_H_ROOT`.
pub const TC_H_ROOT: u32 = 0xffff_ffff;
/// `TC_H_INGRESS`: the parent of an ingress or clsact qdisc.
pub const TC_H_INGRESS: u32 = 0xffff_fff1;
/// Handle of an ingress qdisc, the parent of its filters.
pub const INGRESS_HANDLE: u32 = 0xffff_0000;
/// `ETH_P_ALL`.
const ETH_P_ALL: u16 = 0x0003;
/// `TC_U32_TERMINAL`.
const U32_TERMINAL: u8 = 1;

/// A handle `major:minor` as one number.
pub const fn handle(major: u16, minor: u16) -> u32 {
    (major as u32) << 16 | minor as u32
}

/// The major half of a handle.
pub const fn major(handle: u32) -> u16 {
    (handle >> 16) as u16
}

/// The handle of our class with `minor`.
pub const fn class_handle(minor: u16) -> u32 {
    handle(ROOT_MAJOR, minor)
}

/// The handle of the leaf qdisc of our class `minor`.
pub const fn leaf_handle(minor: u16) -> u32 {
    handle(LEAF_MAJOR_BASE + minor, 0)
}

/// Whether a qdisc handle is in our range.
pub fn is_ours(handle: u32) -> bool {
    (ROOT_MAJOR..=LAST_MAJOR).contains(&major(handle))
}

/// The IPv4 and IPv6 filter priorities of class `minor`.
pub fn filter_prio(minor: u16, ethertype: u16) -> u16 {
    2 * minor + u16::from(ethertype == crate::classify::ETH_P_IPV6)
}

fn tc_handle(h: u32) -> TcHandle {
    TcHandle::from(h)
}

fn header(ifindex: u32, handle: u32, parent: u32, info: u32) -> TcHeader {
    TcHeader {
        family: AddressFamily::Unspec,
        index: ifindex as i32,
        handle: tc_handle(handle),
        parent: tc_handle(parent),
        info,
    }
}

fn raw_options(options: Vec<u8>) -> TcAttribute {
    TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, options))
}

/// How a create request treats an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Fail if it exists (`tc ... add`).
    Create,
    /// Change it in place; fail if it does not exist (`tc ... change`).
    Change,
    /// Create it or replace what is there (`tc ... replace`).
    Replace,
}

impl Mode {
    fn flags(self) -> u16 {
        match self {
            Mode::Create => NLM_F_CREATE | NLM_F_EXCL,
            Mode::Change => 0,
            Mode::Replace => NLM_F_CREATE | NLM_F_REPLACE,
        }
    }
}

/// A qdisc to create, change or replace.
pub fn qdisc(
    mode: Mode,
    ifindex: u32,
    handle: u32,
    parent: u32,
    kind: &str,
    options: Option<Vec<u8>>,
) -> Request {
    let mut message = TcMessage::default();
    message.header = header(ifindex, handle, parent, 0);
    message.attributes.push(TcAttribute::Kind(kind.to_string()));
    if let Some(options) = options {
        message.attributes.push(raw_options(options));
    }
    Request {
        message: RouteNetlinkMessage::NewQueueDiscipline(message),
        flags: mode.flags(),
    }
}

/// Deletes the qdisc `handle` at `parent`.
pub fn delete_qdisc(ifindex: u32, handle: u32, parent: u32) -> Request {
    let mut message = TcMessage::default();
    message.header = header(ifindex, handle, parent, 0);
    Request {
        message: RouteNetlinkMessage::DelQueueDiscipline(message),
        flags: 0,
    }
}

/// An HTB class to create or change.
pub fn htb_class(
    mode: Mode,
    ifindex: u32,
    classid: u32,
    parent: u32,
    class: &wire::HtbClass,
) -> Request {
    let mut message = TcMessage::default();
    message.header = header(ifindex, classid, parent, 0);
    message.attributes.push(TcAttribute::Kind("htb".into()));
    message.attributes.push(raw_options(class.encode()));
    Request {
        message: RouteNetlinkMessage::NewTrafficClass(message),
        flags: mode.flags(),
    }
}

/// Deletes class `classid` (and its leaf qdisc).
pub fn delete_class(ifindex: u32, classid: u32) -> Request {
    let mut message = TcMessage::default();
    message.header = header(ifindex, classid, 0, 0);
    Request {
        message: RouteNetlinkMessage::DelTrafficClass(message),
        flags: 0,
    }
}

fn filter_info(prio: u16, ethertype: u16) -> u32 {
    u32::from(prio) << 16 | u32::from(ethertype.to_be())
}

fn selector(keys: &[(u32, u32, i32)]) -> TcU32Selector {
    let mut selector = TcU32Selector::default();
    selector.flags = TcU32SelectorFlags::from_bits_retain(U32_TERMINAL);
    selector.nkeys = keys.len() as u8;
    selector.keys = keys
        .iter()
        .map(|&(mask, val, off)| {
            let mut key = TcU32Key::default();
            key.mask = mask;
            key.val = val;
            key.off = off;
            key
        })
        .collect();
    selector
}

/// A u32 filter entry on `parent` sending packets matching `keys` to class `classid`.
pub fn u32_filter(
    ifindex: u32,
    parent: u32,
    prio: u16,
    ethertype: u16,
    keys: &[(u32, u32, i32)],
    classid: u32,
) -> Request {
    let mut message = TcMessage::default();
    message.header = header(ifindex, 0, parent, filter_info(prio, ethertype));
    message.attributes.push(TcAttribute::Kind("u32".into()));
    message.attributes.push(TcAttribute::Options(vec![
        TcOption::U32(TcFilterU32Option::ClassId(tc_handle(classid))),
        TcOption::U32(TcFilterU32Option::Selector(selector(keys))),
    ]));
    Request {
        message: RouteNetlinkMessage::NewTrafficFilter(message),
        flags: Mode::Create.flags(),
    }
}

/// A u32 filter on the ingress qdisc redirecting every packet to `target_ifindex`'s egress
/// (`tc filter add dev D parent ffff: protocol all u32 match u32 0 0 action mirred egress
/// redirect dev T`).
pub fn redirect_filter(ifindex: u32, target_ifindex: u32) -> Request {
    let mut mirror = TcMirror::default();
    mirror.generic.action = TcActionType::Stolen;
    mirror.eaction = TcMirrorActionType::EgressRedir;
    mirror.ifindex = target_ifindex;
    let mut action = TcAction::default();
    action.tab = 1;
    action.attributes = vec![
        TcActionAttribute::Kind("mirred".into()),
        TcActionAttribute::Options(vec![TcActionOption::Mirror(TcActionMirrorOption::Parms(
            mirror,
        ))]),
    ];
    let mut message = TcMessage::default();
    message.header = header(
        ifindex,
        0,
        INGRESS_HANDLE,
        filter_info(INGRESS_PRIO, ETH_P_ALL),
    );
    message.attributes.push(TcAttribute::Kind("u32".into()));
    message.attributes.push(TcAttribute::Options(vec![
        TcOption::U32(TcFilterU32Option::Selector(selector(&[(0, 0, 0)]))),
        TcOption::U32(TcFilterU32Option::Action(vec![action])),
    ]));
    Request {
        message: RouteNetlinkMessage::NewTrafficFilter(message),
        flags: Mode::Create.flags(),
    }
}

/// Deletes every filter of priority `prio` and `ethertype` on `parent`.
pub fn delete_filters(ifindex: u32, parent: u32, prio: u16, ethertype: u16) -> Request {
    let mut message = TcMessage::default();
    message.header = header(ifindex, 0, parent, filter_info(prio, ethertype));
    Request {
        message: RouteNetlinkMessage::DelTrafficFilter(message),
        flags: 0,
    }
}

/// Creates an IFB device called `name` with `mtu`, up.
pub fn create_ifb(name: &str, mtu: u32) -> Request {
    let mut message = LinkMessage::default();
    message.header.flags = LinkFlags::Up;
    message.header.change_mask = LinkFlags::Up;
    message.attributes = vec![
        LinkAttribute::IfName(name.to_string()),
        LinkAttribute::Mtu(mtu),
        LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Ifb)]),
    ];
    Request {
        message: RouteNetlinkMessage::NewLink(message),
        flags: Mode::Create.flags(),
    }
}

/// Deletes the link `ifindex`.
pub fn delete_link(ifindex: u32) -> Request {
    let mut message = LinkMessage::default();
    message.header.index = ifindex;
    Request {
        message: RouteNetlinkMessage::DelLink(message),
        flags: 0,
    }
}

/// A dump request for the qdiscs, classes or filters of one interface.
pub fn dump_request(what: DumpKind, ifindex: u32, parent: u32) -> RouteNetlinkMessage {
    let mut message = TcMessage::default();
    message.header = header(ifindex, 0, parent, 0);
    match what {
        DumpKind::Qdiscs => RouteNetlinkMessage::GetQueueDiscipline(message),
        DumpKind::Classes => RouteNetlinkMessage::GetTrafficClass(message),
        DumpKind::Filters => RouteNetlinkMessage::GetTrafficFilter(message),
    }
}

/// What to dump.
#[derive(Debug, Clone, Copy)]
pub enum DumpKind {
    /// Qdiscs.
    Qdiscs,
    /// Classes.
    Classes,
    /// Filters of one parent.
    Filters,
}

/// A dump request for every link.
pub fn dump_links() -> RouteNetlinkMessage {
    RouteNetlinkMessage::GetLink(LinkMessage::default())
}

/// A qdisc, class or filter as dumped: its header, kind, raw options and counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Object {
    /// Interface index.
    pub ifindex: u32,
    /// Its handle (a filter's handle is its u32 node id).
    pub handle: u32,
    /// Its parent.
    pub parent: u32,
    /// `tcm_info`: for filters, priority << 16 | protocol (network order).
    pub info: u32,
    /// Its kind, e.g. `htb`.
    pub kind: String,
    /// The value of its `TCA_OPTIONS`.
    pub options: Vec<u8>,
    /// Its counters.
    pub counters: Counters,
}

impl Object {
    /// Reads a dumped tc message (the payload after the netlink header).
    pub fn parse(payload: &[u8]) -> Option<Object> {
        let field = |at: usize| {
            Some(u32::from_ne_bytes(
                payload.get(at..at + 4)?.try_into().ok()?,
            ))
        };
        let mut object = Object {
            ifindex: field(4)?,
            handle: field(8)?,
            parent: field(12)?,
            info: field(16)?,
            ..Object::default()
        };
        for (kind, value) in nlas(payload.get(20..)?) {
            match kind {
                TCA_KIND => {
                    object.kind = String::from_utf8_lossy(value)
                        .trim_end_matches('\0')
                        .to_string()
                }
                TCA_OPTIONS => object.options = value.to_vec(),
                TCA_STATS2 => object.counters = Counters::decode(value),
                _ => {}
            }
        }
        Some(object)
    }

    /// A filter's priority.
    pub fn prio(&self) -> u16 {
        (self.info >> 16) as u16
    }

    /// A filter's protocol (EtherType).
    pub fn ethertype(&self) -> u16 {
        u16::from_be(self.info as u16)
    }

    /// A u32 filter's entry, unless this is a hash table.
    pub fn u32_entry(&self) -> Option<U32Entry> {
        (self.kind == "u32")
            .then(|| U32Entry::decode(&self.options))
            .flatten()
    }
}

/// A link as dumped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// MTU.
    pub mtu: u32,
}

impl Link {
    /// Reads a dumped link message.
    pub fn parse(payload: &[u8]) -> Option<Link> {
        let index = u32::from_ne_bytes(payload.get(4..8)?.try_into().ok()?);
        let mut link = Link {
            index,
            name: String::new(),
            mtu: 0,
        };
        // struct ifinfomsg is 16 bytes; IFLA_IFNAME = 3, IFLA_MTU = 4.
        for (kind, value) in nlas(payload.get(16..)?) {
            match kind {
                3 => {
                    link.name = String::from_utf8_lossy(value)
                        .trim_end_matches('\0')
                        .to_string()
                }
                4 => link.mtu = u32::from_ne_bytes(value.get(0..4)?.try_into().ok()?),
                _ => {}
            }
        }
        Some(link)
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::Emitable;

    use super::*;
    use crate::wire::tests::fixture;

    /// Our request's bytes after the netlink header, with the fixture's interface index.
    fn body(request: &Request) -> Vec<u8> {
        let mut out = vec![0; request.message.buffer_len()];
        request.message.emit(&mut out);
        out
    }

    /// Compares our request with the captured one: flags, tcmsg and attributes.
    fn assert_same_as_tc(request: Request, name: &str) {
        let captured = fixture(name);
        let flags = u16::from_ne_bytes(captured[6..8].try_into().unwrap());
        // NLM_F_REQUEST | NLM_F_ACK are added when sending.
        assert_eq!(request.flags | 5, flags, "flags of {name}");
        assert_eq!(body(&request), captured[16..], "bytes of {name}");
    }

    fn ifindex_of(name: &str) -> u32 {
        u32::from_ne_bytes(fixture(name)[16 + 4..16 + 8].try_into().unwrap())
    }

    #[test]
    fn qdisc_requests_match_tc() {
        let ifindex = ifindex_of("htb-qdisc");
        assert_same_as_tc(
            qdisc(
                Mode::Create,
                ifindex,
                handle(ROOT_MAJOR, 0),
                TC_H_ROOT,
                "htb",
                Some(wire::htb_qdisc(2, 10)),
            ),
            "htb-qdisc",
        );
        assert_same_as_tc(
            qdisc(
                Mode::Create,
                ifindex,
                leaf_handle(3),
                class_handle(3),
                "bfifo",
                Some(wire::bfifo(25_000)),
            ),
            "bfifo",
        );
    }

    #[test]
    fn u32_requests_match_tc() {
        // tc filter add ... protocol ip prio 6 u32 match ip dst 198.18.2.2/32
        //   match ip protocol 6 0xff match ip dport 5001 0xffff flowid 7100:3
        let keys = [
            (0xffff_ffff, 0xc612_0202, 16),
            (0x00ff_0000, 0x0006_0000, 8),
            (0xffff, 5001, 20),
        ];
        let request = u32_filter(
            ifindex_of("u32"),
            handle(ROOT_MAJOR, 0),
            6,
            0x0800,
            &keys,
            class_handle(3),
        );
        assert_same_as_tc(request, "u32");
    }

    #[test]
    fn ingress_redirects_carry_the_same_action_as_tc() {
        // tc filter add ... parent ffff: protocol all prio 49152 u32 match u32 0 0
        //   action mirred egress redirect dev qlifb0
        // tc also sends an empty TCA_U32_CLASSID-free selector first and marks the action
        // nests; compare what the kernel reads: keys, target and the prio/protocol.
        let captured = fixture("mirred");
        let ifindex = ifindex_of("mirred");
        let ours = body(&redirect_filter(ifindex, ifindex + 1));
        let entry = |bytes: &[u8]| Object::parse(bytes).unwrap();
        let (theirs, mine) = (entry(&captured[16..]), entry(&ours));
        assert_eq!(mine.u32_entry(), theirs.u32_entry());
        assert_eq!(theirs.prio(), 49152);
        assert_eq!(mine.ethertype(), theirs.ethertype());
        assert_eq!((mine.parent, mine.ifindex), (theirs.parent, theirs.ifindex));
    }

    #[test]
    fn handles_and_priorities_stay_in_our_range() {
        assert_eq!(class_handle(3), 0x7100_0003);
        assert_eq!(leaf_handle(3), 0x7203_0000);
        assert!(is_ours(leaf_handle(LAST_CLASS)));
        assert!(!is_ours(handle(0x8000, 0)) && !is_ours(handle(1, 0)));
        assert_eq!(filter_prio(3, 0x0800), 6);
        assert_eq!(filter_prio(3, 0x86dd), 7);
        assert!(filter_prio(LAST_CLASS, 0x86dd) < INGRESS_PRIO);
    }
}
