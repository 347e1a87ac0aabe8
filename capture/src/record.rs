//! The records a capture produces — flow records and time-binned series rows — and their
//! documented columns.
//!
//! Every column is declared once, with its unit and definition, in the `columns!` blocks
//! below; the serde field names, the CSV header and `COLUMNS.md` all come from there. Per-
//! direction columns are prefixed `c2s_` (client → server) and `s2c_` (server → client).
//! Columns that only TCP defines are empty (`null` in JSON) for other protocols.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One documented column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The column name (without direction prefix for per-direction columns).
    pub name: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// A one-line definition.
    pub definition: &'static str,
}

/// A value that can be written into a CSV cell.
pub trait CsvCell {
    /// Appends the cell text (no separator) to `out`.
    fn write_cell(&self, out: &mut String);
}

macro_rules! display_cells {
    ($($t:ty),*) => {$(
        impl CsvCell for $t {
            fn write_cell(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
display_cells!(f64, bool, IpAddr);

/// Integers are written without the formatting machinery: thousands of cells per second.
macro_rules! integer_cells {
    ($($t:ty),*) => {$(
        impl CsvCell for $t {
            fn write_cell(&self, out: &mut String) {
                push_decimal(out, u64::from(*self));
            }
        }
    )*};
}
integer_cells!(u8, u16, u32, u64);

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[start..]).expect("ASCII digits"));
}

impl CsvCell for String {
    fn write_cell(&self, out: &mut String) {
        if self.contains([',', '"', '\n']) {
            let _ = write!(out, "\"{}\"", self.replace('"', "\"\""));
        } else {
            out.push_str(self);
        }
    }
}

impl<T: CsvCell> CsvCell for Option<T> {
    fn write_cell(&self, out: &mut String) {
        if let Some(v) = self {
            v.write_cell(out);
        }
    }
}

/// Records written as rows of a table.
pub trait Row {
    /// The column names, in order.
    fn header() -> Vec<String>;
    /// Appends the row's cells, comma-separated, without a newline.
    fn write_csv(&self, out: &mut String);
}

/// Declares a record struct whose fields are documented columns.
macro_rules! columns {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $field:ident : $ty:ty => $unit:literal, $definition:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            $( #[doc = $definition] pub $field: $ty, )*
        }

        impl $name {
            /// The documented columns, in output order.
            pub const COLUMNS: &'static [Column] = &[
                $( Column { name: stringify!($field), unit: $unit, definition: $definition }, )*
            ];

            /// Appends the cells, each preceded by a comma unless it is the first of the row.
            fn write_cells(&self, out: &mut String, first: &mut bool) {
                $(
                    if !std::mem::take(first) {
                        out.push(',');
                    }
                    CsvCell::write_cell(&self.$field, out);
                )*
            }
        }
    };
}

columns! {
    /// The columns that describe a flow as a whole.
    pub struct FlowColumns {
        flow_id: u64 => "-", "Number of the flow in this capture, from 1, in order of first packet; links series rows to flows";
        protocol: String => "-", "Transport protocol: tcp, udp, icmp, icmpv6, or the IP protocol number";
        ip_version: u8 => "-", "4 or 6";
        client_ip: Option<IpAddr> => "-", "Client address: the sender of the first SYN (TCP), else of the first packet";
        client_port: u16 => "-", "Client port (0 for protocols without ports)";
        server_ip: Option<IpAddr> => "-", "Server address: the other end";
        server_port: u16 => "-", "Server port (0 for protocols without ports)";
        first_unix_s: f64 => "s", "Time of the first packet, seconds since the Unix epoch";
        last_unix_s: f64 => "s", "Time of the last packet, seconds since the Unix epoch";
        duration_s: f64 => "s", "last_unix_s − first_unix_s";
        close_reason: String => "-", "Why the record ended: fin (both FINs seen), rst, idle (timeout), evicted (flow table full), end (capture ended), active (snapshot of a running flow)";
        syn_seen: Option<bool> => "flag", "A SYN from the client was seen (the flow started inside the capture)";
        handshake_complete: Option<bool> => "flag", "SYN, SYN/ACK and the client's ACK of the SYN/ACK were all seen";
    }
}

columns! {
    /// The statistics of one direction of a flow; prefixed `c2s_` or `s2c_` in the output.
    pub struct DirectionRecord {
        pkts: u64 => "packets", "Packets sent in this direction";
        wire_bytes: u64 => "bytes", "Frame bytes as on the wire (original length, link header included)";
        ip_bytes: u64 => "bytes", "IP bytes: the IP total length of every packet (snaplen cuts do not reduce it)";
        payload_bytes: u64 => "bytes", "Transport payload bytes, retransmissions included";
        data_pkts: u64 => "packets", "Packets carrying transport payload";
        unique_bytes: Option<u64> => "bytes", "TCP payload bytes seen for the first time (payload_bytes − retx_bytes)";
        retx_pkts: Option<u64> => "packets", "TCP packets carrying payload bytes already seen at this capture point (tcptrace's 'rexmt data pkts')";
        retx_bytes: Option<u64> => "bytes", "TCP payload bytes already seen at this capture point";
        out_of_seq_pkts: Option<u64> => "packets", "TCP packets that filled a gap below the highest sequence number seen (tcptrace's 'outoforder pkts'; after a loss upstream of the capture point, the retransmissions)";
        dup_pkts: Option<u64> => "packets", "TCP packets identical to the previous payload packet (same sequence number, length and IPv4 ID): copies made by the network; not counted as retransmissions";
        dup_ack_pkts: Option<u64> => "packets", "Duplicate ACKs: no payload, no SYN/FIN/RST, same ACK number and nonzero window as the previous packet";
        syn_pkts: Option<u64> => "packets", "Packets with SYN set (more than 1: SYN retransmissions)";
        fin_pkts: Option<u64> => "packets", "Packets with FIN set";
        rst_pkts: Option<u64> => "packets", "Packets with RST set";
        ack_pkts: Option<u64> => "packets", "Packets with ACK set";
        psh_pkts: Option<u64> => "packets", "Packets with PSH set";
        pure_ack_pkts: Option<u64> => "packets", "Packets with ACK set, no payload and no SYN/FIN/RST";
        rtt_samples: Option<u64> => "count", "RTT samples: segments of this direction whose last byte the other side acknowledged exactly, not retransmitted (Karn's rule)";
        rtt_min_ms: Option<f64> => "ms", "Smallest RTT sample (capture point → receiver → capture point)";
        rtt_avg_ms: Option<f64> => "ms", "Mean RTT sample";
        rtt_max_ms: Option<f64> => "ms", "Largest RTT sample";
        rtt_std_ms: Option<f64> => "ms", "Standard deviation of the RTT samples (population)";
        rtt_handshake_ms: Option<f64> => "ms", "Handshake RTT: this direction's SYN to the other side's ACK of it (c2s: SYN → SYN/ACK; s2c: SYN/ACK → ACK); empty if the SYN was retransmitted";
        ttl_min: Option<u8> => "hops", "Smallest IPv4 TTL / IPv6 hop limit";
        ttl_max: Option<u8> => "hops", "Largest IPv4 TTL / IPv6 hop limit";
        mss_bytes: Option<u64> => "bytes", "MSS option of this direction's SYN";
        win_scale: Option<u8> => "shift", "Window scale option of this direction's SYN";
        sack_permitted: Option<bool> => "flag", "SACK-permitted option in this direction's SYN";
        sack_pkts: Option<u64> => "packets", "Packets carrying SACK blocks";
        timestamps: Option<bool> => "flag", "Timestamp option seen in this direction";
        rwin_min_bytes: Option<u64> => "bytes", "Smallest advertised receive window (scaled when both SYNs carried window scale; SYNs unscaled)";
        rwin_max_bytes: Option<u64> => "bytes", "Largest advertised receive window";
        rwin_zero_pkts: Option<u64> => "packets", "Packets advertising a zero window (RST excluded)";
        seg_min_bytes: Option<u64> => "bytes", "Smallest transport payload of a packet with payload";
        seg_max_bytes: Option<u64> => "bytes", "Largest transport payload of a packet";
        inflight_max_bytes: Option<u64> => "bytes", "Largest unacknowledged data: highest sequence number sent minus highest ACK received";
        first_pkt_ms: Option<f64> => "ms", "First packet of this direction, since the flow's first packet";
        last_pkt_ms: Option<f64> => "ms", "Last packet of this direction, since the flow's first packet";
        first_payload_ms: Option<f64> => "ms", "First packet with payload, since the flow's first packet";
        last_payload_ms: Option<f64> => "ms", "Last packet with payload, since the flow's first packet";
        pkt_size_min_bytes: Option<u64> => "bytes", "Smallest IP packet (IP total length)";
        pkt_size_mean_bytes: Option<f64> => "bytes", "Mean IP packet size";
        pkt_size_std_bytes: Option<f64> => "bytes", "Standard deviation of the IP packet size (population)";
        pkt_size_max_bytes: Option<u64> => "bytes", "Largest IP packet";
        iat_min_ms: Option<f64> => "ms", "Smallest time between consecutive packets of this direction";
        iat_mean_ms: Option<f64> => "ms", "Mean time between consecutive packets";
        iat_std_ms: Option<f64> => "ms", "Standard deviation of the inter-arrival times (population)";
        iat_max_ms: Option<f64> => "ms", "Largest time between consecutive packets";
    }
}

serde_with::with_prefix!(c2s_prefix "c2s_");
serde_with::with_prefix!(s2c_prefix "s2c_");

/// The statistics of one flow: the flow columns, then `c2s_*`, then `s2c_*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// The flow as a whole.
    #[serde(flatten)]
    pub flow: FlowColumns,
    /// Client → server.
    #[serde(flatten, with = "c2s_prefix")]
    pub c2s: DirectionRecord,
    /// Server → client.
    #[serde(flatten, with = "s2c_prefix")]
    pub s2c: DirectionRecord,
}

impl Row for FlowRecord {
    fn header() -> Vec<String> {
        let flow = FlowColumns::COLUMNS.iter().map(|c| c.name.to_string());
        let dir = |prefix: &'static str| {
            DirectionRecord::COLUMNS
                .iter()
                .map(move |c| format!("{prefix}{}", c.name))
        };
        flow.chain(dir("c2s_")).chain(dir("s2c_")).collect()
    }

    fn write_csv(&self, out: &mut String) {
        let mut first = true;
        self.flow.write_cells(out, &mut first);
        self.c2s.write_cells(out, &mut first);
        self.s2c.write_cells(out, &mut first);
    }
}

columns! {
    /// Traffic of one time bin, of one flow or of the whole capture.
    pub struct SeriesRow {
        flow_id: Option<u64> => "-", "The flow (flow_id of its record); empty for the whole capture";
        bin_start_unix_s: f64 => "s", "Start of the bin, seconds since the Unix epoch (bins are aligned to multiples of the bin size)";
        bin_s: f64 => "s", "Bin size";
        c2s_pkts: u64 => "packets", "Client → server packets in the bin";
        c2s_ip_bytes: u64 => "bytes", "Client → server IP bytes in the bin";
        c2s_retx_pkts: u64 => "packets", "Client → server TCP retransmitted packets in the bin (as retx_pkts)";
        s2c_pkts: u64 => "packets", "Server → client packets in the bin";
        s2c_ip_bytes: u64 => "bytes", "Server → client IP bytes in the bin";
        s2c_retx_pkts: u64 => "packets", "Server → client TCP retransmitted packets in the bin";
    }
}

impl Row for SeriesRow {
    fn header() -> Vec<String> {
        SeriesRow::COLUMNS
            .iter()
            .map(|c| c.name.to_string())
            .collect()
    }

    fn write_csv(&self, out: &mut String) {
        self.write_cells(out, &mut true);
    }
}

/// The column documentation as a markdown document (the content of `COLUMNS.md`).
pub fn columns_markdown() -> String {
    let mut md = String::from(
        "# qoelab capture: columns\n\n\
         Generated from `capture/src/record.rs` (a test keeps this file in sync:\n\
         `QOELAB_WRITE_COLUMNS=1 cargo test -p qoelab-capture columns_md` rewrites it).\n\n\
         A flow record has the flow columns, then every direction column twice: `c2s_` \
         (client → server) and `s2c_` (server → client), e.g. `c2s_rtt_avg_ms`, \
         `s2c_retx_pkts`. Empty cells (JSON `null`) mean \"not defined\": TCP-only columns of \
         UDP/ICMP flows, RTT without samples, statistics of a direction without packets.\n\n\
         Statistics describe the traffic **at the capture point**: a packet lost upstream is \
         never seen, so its retransmission fills a gap (`out_of_seq_pkts`), while a packet \
         lost downstream was seen, so its retransmission counts in `retx_pkts`.\n",
    );
    let table = |md: &mut String, title: &str, prefix: &str, columns: &[Column]| {
        let _ = write!(
            md,
            "\n## {title}\n\n| column | unit | definition |\n|---|---|---|\n"
        );
        for c in columns {
            let _ = writeln!(
                md,
                "| `{prefix}{}` | {} | {} |",
                c.name, c.unit, c.definition
            );
        }
    };
    table(&mut md, "Flow columns", "", FlowColumns::COLUMNS);
    table(
        &mut md,
        "Direction columns (each as `c2s_…` and `s2c_…`)",
        "",
        DirectionRecord::COLUMNS,
    );
    table(
        &mut md,
        "Series columns (`--series`, one row per flow and bin, plus rows for the whole capture)",
        "",
        SeriesRow::COLUMNS,
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_written_in_decimal() {
        for n in [0, 7, 10, 1_000_000_007, u64::MAX] {
            let mut out = String::new();
            n.write_cell(&mut out);
            assert_eq!(out, n.to_string());
        }
        let mut out = String::new();
        u8::MAX.write_cell(&mut out);
        assert_eq!(out, "255");
    }

    #[test]
    fn json_keys_are_the_csv_header_in_order() {
        let record = FlowRecord::default();
        let json = serde_json::to_value(&record).unwrap();
        let mut keys: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        let mut header = FlowRecord::header();
        assert!(header.contains(&"c2s_rtt_avg_ms".to_string()));
        assert!(header.contains(&"s2c_retx_pkts".to_string()));
        keys.sort();
        header.sort();
        assert_eq!(keys, header);
    }

    #[test]
    fn records_round_trip_through_json() {
        let mut record = FlowRecord::default();
        record.flow.client_ip = Some("198.18.1.2".parse().unwrap());
        record.flow.protocol = "tcp".into();
        record.c2s.rtt_avg_ms = Some(12.5);
        record.s2c.retx_pkts = Some(3);
        let text = serde_json::to_string(&record).unwrap();
        assert!(text.contains("\"c2s_rtt_avg_ms\":12.5"), "{text}");
        let back: FlowRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn csv_rows_have_one_cell_per_column() {
        let mut record = FlowRecord::default();
        record.flow.protocol = "tcp".into();
        record.c2s.pkts = 7;
        let mut line = String::new();
        record.write_csv(&mut line);
        assert_eq!(line.split(',').count(), FlowRecord::header().len());
        assert!(line.starts_with("0,tcp,0,,0,,0,0,0,0,,,,7,"), "{line}");
        let mut series = String::new();
        SeriesRow::default().write_csv(&mut series);
        assert_eq!(series.split(',').count(), SeriesRow::header().len());
    }

    #[test]
    fn strings_with_commas_are_quoted() {
        let mut out = String::new();
        "a,\"b\"".to_string().write_cell(&mut out);
        assert_eq!(out, "\"a,\"\"b\"\"\"");
    }

    #[test]
    fn columns_md_is_in_sync() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/COLUMNS.md");
        let expected = columns_markdown();
        if std::env::var_os("QOELAB_WRITE_COLUMNS").is_some() {
            std::fs::write(path, &expected).unwrap();
        }
        let actual = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            actual == expected,
            "capture/COLUMNS.md is out of date: run QOELAB_WRITE_COLUMNS=1 cargo test -p \
             qoelab-capture columns_md"
        );
    }
}
