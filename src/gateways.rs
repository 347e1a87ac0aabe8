//! The gateways `qoelab serve` drives: the `[[gateway]]` entries of a `--gateways` TOML file,
//! or one gateway from the command line's options (`--agent`, `--uplink`, ...). Each problem of
//! the file names the file, the entry (its number and name), the field, the value and the
//! accepted form; the same checks name the option for a gateway given by options.
//!
//! ```toml
//! [[gateway]]
//! name = "gw-1"                                   # 1 to 32 of a-z, 0-9, '-'; unique
//! agent = "tcp://10.0.0.11:7070"                  # or a socket path
//! agent_token_file = "/etc/qoelab/agent-token"    # needed for tcp://
//! uplink = "eth0"                                 # uplink and downlink go together
//! downlink = "eth1"
//! # netns = "lab", capture_iface = "eth1", video_server = "http://198.51.100.7:8080",
//! # iot_sink = "198.51.100.7:9000"
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use qoelab_agent::client::{AgentClient, ClientError, TARGET_FORMS, Target};
use qoelab_collector::gateways::{DEFAULT_GATEWAY, NAME_FORM, is_name};
use qoelab_collector::network::Link;
use qoelab_shaper::IfaceRef;

/// The agent of a gateway given by options, when `--agent` is not given.
const DEFAULT_AGENT: &str = "/run/qoelab/agent.sock";

/// Series bin of the sessions' captures, ms.
pub const BIN_MS: u64 = 1000;

/// A gateway's options on the command line, for a server with one gateway.
#[derive(Debug, Default, Args)]
pub struct GatewayArgs {
    /// Name of the gateway these options define, which campaigns may name
    /// [default: default].
    #[arg(long, env = "QOELAB_GATEWAY_NAME")]
    gateway_name: Option<String>,
    /// The agent: its Unix socket, or tcp://HOST:PORT for an agent on another host
    /// [default: /run/qoelab/agent.sock].
    #[arg(long, env = "QOELAB_AGENT")]
    agent: Option<String>,
    /// File holding the token of an agent reached over TCP (its --token-file).
    #[arg(long, env = "QOELAB_AGENT_TOKEN_FILE")]
    agent_token_file: Option<PathBuf>,
    #[command(flatten)]
    link: LinkArgs,
}

/// Where the built-in workloads' sessions are shaped and captured, and their servers.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct LinkArgs {
    /// Interface shaped for uploads (client → server leave through it), e.g. the gateway's
    /// uplink. Sessions fail, saying so, until --uplink and --downlink are given.
    #[arg(long, env = "QOELAB_UPLINK", requires = "downlink")]
    uplink: Option<String>,
    /// Interface shaped for downloads (server → client leave through it), e.g. the LAN side.
    #[arg(long, env = "QOELAB_DOWNLINK", requires = "uplink")]
    downlink: Option<String>,
    /// Network namespace of the interfaces (default: the agent's own).
    #[arg(long, env = "QOELAB_NETNS")]
    netns: Option<String>,
    /// Interface the sessions are captured on (default: the downlink).
    #[arg(long, env = "QOELAB_CAPTURE_IFACE")]
    capture_iface: Option<String>,
    /// Video server the built-in player plays from (`qoelab workload video serve`), e.g.
    /// http://198.18.2.2:8080; its traffic must cross the shaped link.
    #[arg(long, env = "QOELAB_VIDEO_SERVER")]
    video_server: Option<String>,
    /// IoT sink the built-in uploaders send to, HOST:PORT: analytic i of a session sends to
    /// PORT+i, so the sink listens on PORT..PORT+15 (`qoelab workload iot sink --ports 16`).
    #[arg(long, env = "QOELAB_IOT_SINK")]
    iot_sink: Option<String>,
}

/// One gateway: its agent, and the link its sessions are shaped and captured on.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    /// Its name.
    pub name: String,
    /// Its agent: a socket path or `tcp://HOST:PORT`.
    pub agent: String,
    /// The file holding the token of an agent reached over TCP.
    pub agent_token_file: Option<PathBuf>,
    /// Its link and workload servers.
    pub link: LinkArgs,
    /// The file that defined it (`None`: the command line).
    pub file: Option<PathBuf>,
}

/// A field whose value is not accepted.
#[derive(Debug)]
struct Invalid {
    field: String,
    value: String,
    accepted: String,
}

impl Invalid {
    fn new(field: &str, value: impl std::fmt::Display, accepted: impl Into<String>) -> Invalid {
        Invalid {
            field: field.to_string(),
            value: value.to_string(),
            accepted: accepted.into(),
        }
    }

    /// The message, the field spelled `field` (e.g. as an option).
    fn spelled(&self, field: &str) -> String {
        format!(
            "{field} = '{}' is not accepted: {}",
            self.value, self.accepted
        )
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spelled(&self.field))
    }
}

/// An interface name, for messages.
const IFACE_FORM: &str =
    "an interface name as `ip link` shows it (1 to 15 characters without '/' or spaces), e.g. eth0";

/// The fields of a `[[gateway]]` entry and their accepted forms.
const FIELDS: [(&str, &str); 9] = [
    ("name", NAME_FORM),
    ("agent", TARGET_FORMS),
    (
        "agent_token_file",
        "the path of the file holding the agent's token (its --token-file)",
    ),
    ("uplink", IFACE_FORM),
    ("downlink", IFACE_FORM),
    ("netns", "a namespace name as `ip netns list` shows it"),
    ("capture_iface", IFACE_FORM),
    (
        "video_server",
        "http://HOST:PORT of `qoelab workload video serve`, e.g. http://198.51.100.7:8080",
    ),
    (
        "iot_sink",
        "HOST:PORT of `qoelab workload iot sink`, e.g. 198.51.100.7:9000",
    ),
];

fn accepted(field: &str) -> &'static str {
    FIELDS
        .iter()
        .find(|(f, _)| *f == field)
        .map_or("", |(_, accepted)| accepted)
}

/// A field given as an option: `--agent-token-file`.
fn option_name(field: &str) -> String {
    format!("--{}", field.replace('_', "-"))
}

/// A field given as an environment variable: `QOELAB_AGENT_TOKEN_FILE`.
fn env_name(field: &str) -> String {
    format!("QOELAB_{}", field.to_uppercase())
}

impl LinkArgs {
    /// The link, if both interfaces are given.
    pub fn link(&self) -> Option<Link> {
        let (upload, download) = (self.uplink.clone()?, self.downlink.clone()?);
        Some(Link {
            netns: self.netns.clone(),
            capture_iface: self.capture_iface.clone().unwrap_or(download.clone()),
            upload_iface: upload,
            download_iface: download,
            bin_ms: BIN_MS,
            max_capture_s: 4 * 3600,
        })
    }

    /// The video server's URL, if given.
    pub fn video_server(&self) -> Option<&str> {
        self.video_server.as_deref()
    }

    /// The IoT sink's address, if given.
    pub fn iot_sink(&self) -> Option<&str> {
        self.iot_sink.as_deref()
    }

    /// The given fields' names.
    fn given(&self) -> Vec<&'static str> {
        [
            ("uplink", &self.uplink),
            ("downlink", &self.downlink),
            ("netns", &self.netns),
            ("capture_iface", &self.capture_iface),
            ("video_server", &self.video_server),
            ("iot_sink", &self.iot_sink),
        ]
        .into_iter()
        .filter_map(|(field, value)| value.as_ref().map(|_| field))
        .collect()
    }

    /// Checks every field; the first one not accepted.
    fn check(&self) -> Result<(), Invalid> {
        let iface = |field: &str, name: &Option<String>| match name {
            Some(name) if IfaceRef::new(None, name).validate().is_err() => {
                Err(Invalid::new(field, name, IFACE_FORM))
            }
            _ => Ok(()),
        };
        match (&self.uplink, &self.downlink) {
            (Some(_), None) => {
                return Err(Invalid::new(
                    "downlink",
                    "",
                    "an interface name: uplink and downlink go together",
                ));
            }
            (None, Some(_)) => {
                return Err(Invalid::new(
                    "uplink",
                    "",
                    "an interface name: uplink and downlink go together",
                ));
            }
            _ => {}
        }
        iface("uplink", &self.uplink)?;
        iface("downlink", &self.downlink)?;
        iface("capture_iface", &self.capture_iface)?;
        if let Some(netns) = &self.netns
            && IfaceRef::new(Some(netns), "lo").validate().is_err()
        {
            return Err(Invalid::new("netns", netns, accepted("netns")));
        }
        if let Some(url) = &self.video_server {
            let host = url.strip_prefix("http://").unwrap_or("");
            if host.is_empty() || host.contains(char::is_whitespace) {
                return Err(Invalid::new("video_server", url, accepted("video_server")));
            }
        }
        if let Some(sink) = &self.iot_sink {
            let port = sink.rsplit_once(':').filter(|(host, _)| !host.is_empty());
            if !port.is_some_and(|(_, port)| port.parse::<u16>().is_ok_and(|p| p > 0)) {
                return Err(Invalid::new("iot_sink", sink, accepted("iot_sink")));
            }
        }
        Ok(())
    }
}

/// Checks a gateway's name and agent (a TCP agent needs a token file).
fn check_agent(name: &str, agent: &str, agent_token_file: Option<&Path>) -> Result<(), Invalid> {
    if !is_name(name) {
        return Err(Invalid::new("name", name, NAME_FORM));
    }
    match Target::parse(agent) {
        Err(ClientError::Target { why, .. }) => Err(Invalid::new(
            "agent",
            agent,
            format!("{TARGET_FORMS} ({why})"),
        )),
        Err(other) => Err(Invalid::new("agent", agent, other.to_string())),
        Ok(Target::Tcp { .. }) if agent_token_file.is_none() => Err(Invalid::new(
            "agent_token_file",
            "",
            format!(
                "{} (an agent over TCP needs it)",
                accepted("agent_token_file")
            ),
        )),
        Ok(_) => Ok(()),
    }
}

impl GatewayArgs {
    /// These options with those set to empty text (an empty variable, e.g. a compose file's
    /// `${QOELAB_UPLINK:-}`) left out.
    fn without_empty(self) -> GatewayArgs {
        let given = |v: Option<String>| v.filter(|v| !v.is_empty());
        let link = self.link;
        GatewayArgs {
            gateway_name: given(self.gateway_name),
            agent: given(self.agent),
            agent_token_file: self.agent_token_file.filter(|p| !p.as_os_str().is_empty()),
            link: LinkArgs {
                uplink: given(link.uplink),
                downlink: given(link.downlink),
                netns: given(link.netns),
                capture_iface: given(link.capture_iface),
                video_server: given(link.video_server),
                iot_sink: given(link.iot_sink),
            },
        }
    }

    /// The options given (as their field names).
    fn given(&self) -> Vec<&'static str> {
        let mut given: Vec<&'static str> = [
            ("gateway_name", self.gateway_name.is_some()),
            ("agent", self.agent.is_some()),
            ("agent_token_file", self.agent_token_file.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, is)| is.then_some(field))
        .collect();
        given.extend(self.link.given());
        given
    }

    /// The one gateway these options define.
    fn gateway(self) -> Result<Gateway> {
        let gateway = Gateway {
            name: self
                .gateway_name
                .unwrap_or_else(|| DEFAULT_GATEWAY.to_string()),
            agent: self.agent.unwrap_or_else(|| DEFAULT_AGENT.to_string()),
            agent_token_file: self.agent_token_file,
            link: self.link,
            file: None,
        };
        check_agent(
            &gateway.name,
            &gateway.agent,
            gateway.agent_token_file.as_deref(),
        )
        .and_then(|()| gateway.link.check())
        .map_err(|e| {
            let field = match e.field.as_str() {
                "name" => "gateway_name",
                other => other,
            };
            anyhow!(e.spelled(&option_name(field)))
        })?;
        Ok(gateway)
    }
}

/// The gateways: those of `file` if given, else the one `args` define. Both at once are
/// refused, naming the options to move into the file. Options set to empty text count as not
/// given.
pub fn load(file: Option<&Path>, args: GatewayArgs) -> Result<Vec<Gateway>> {
    let args = args.without_empty();
    let Some(path) = file.filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(vec![args.gateway()?]);
    };
    let given = args.given();
    if !given.is_empty() {
        let options: Vec<String> = given
            .iter()
            .map(|f| format!("{} ({})", option_name(f), env_name(f)))
            .collect();
        bail!(
            "--gateways {} lists every gateway with its agent and link, so {} cannot be given \
             as well: move them into the file's [[gateway]] entries, or leave out --gateways \
             (QOELAB_GATEWAYS) to drive one gateway by options",
            path.display(),
            options.join(", ")
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the gateways file {}", path.display()))?;
    parse(path, &text)
}

/// The gateways of the TOML `text` of the file at `path`.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Gateway>> {
    let file = path.display();
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| anyhow!("{file} is not TOML: {e}"))?;
    let form = "one [[gateway]] table per gateway, with at least name and agent";
    if let Some(key) = table.keys().find(|k| *k != "gateway") {
        bail!("{file}: {key} is not accepted at the top level; accepted: {form}");
    }
    let entries = match table.get("gateway") {
        Some(toml::Value::Array(entries)) if !entries.is_empty() => entries,
        Some(other) if !other.is_array() => {
            bail!("{file}: gateway = {other} is not accepted: {form}")
        }
        _ => bail!("{file} lists no gateway; accepted: {form}"),
    };
    let mut out: Vec<Gateway> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let name = entry.get("name").and_then(toml::Value::as_str);
        let at = match name {
            Some(name) => format!("{file}: gateway {} ({name})", i + 1),
            None => format!("{file}: gateway {}", i + 1),
        };
        let gateway = entry_of(entry, path).map_err(|e| anyhow!("{at}: {e}"))?;
        if let Some(first) = out.iter().position(|g| g.name == gateway.name) {
            bail!(
                "{at}: {}",
                Invalid::new(
                    "name",
                    &gateway.name,
                    format!("a name no other gateway has (gateway {} has it)", first + 1)
                )
            );
        }
        out.push(gateway);
    }
    Ok(out)
}

/// One `[[gateway]]` entry.
fn entry_of(entry: &toml::Value, path: &Path) -> Result<Gateway, Invalid> {
    let table = entry.as_table().ok_or_else(|| {
        Invalid::new(
            "gateway",
            entry,
            "a table of name, agent, and the link's fields",
        )
    })?;
    let fields: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
    if let Some((key, value)) = table.iter().find(|(k, _)| !fields.contains(&k.as_str())) {
        return Err(Invalid::new(
            key,
            value,
            format!(
                "not a field of a gateway; the fields are {}",
                fields.join(", ")
            ),
        ));
    }
    let text = |field: &str| -> Result<Option<String>, Invalid> {
        match table.get(field) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(Invalid::new(
                field,
                other,
                format!("{}, in quotes", accepted(field)),
            )),
        }
    };
    let required = |field: &str| -> Result<String, Invalid> {
        text(field)?
            .ok_or_else(|| Invalid::new(field, "", format!("{} (required)", accepted(field))))
    };
    let gateway = Gateway {
        name: required("name")?,
        agent: required("agent")?,
        agent_token_file: text("agent_token_file")?.map(PathBuf::from),
        link: LinkArgs {
            uplink: text("uplink")?,
            downlink: text("downlink")?,
            netns: text("netns")?,
            capture_iface: text("capture_iface")?,
            video_server: text("video_server")?,
            iot_sink: text("iot_sink")?,
        },
        file: Some(path.to_path_buf()),
    };
    check_agent(
        &gateway.name,
        &gateway.agent,
        gateway.agent_token_file.as_deref(),
    )?;
    gateway.link.check()?;
    Ok(gateway)
}

impl Gateway {
    /// A client of its agent (the token read from its file).
    pub fn connect(&self) -> Result<AgentClient> {
        let token = self
            .agent_token_file
            .as_ref()
            .map(|path| {
                std::fs::read_to_string(path)
                    .map(|t| t.trim().to_string())
                    .with_context(|| {
                        format!(
                            "gateway {}: cannot read the agent's token from {}",
                            self.name,
                            path.display()
                        )
                    })
            })
            .transpose()?;
        AgentClient::connect(&self.agent, token.as_deref())
            .with_context(|| format!("gateway {}: its agent", self.name))
    }

    /// Why its sessions fail when it has no link, and what to give it.
    pub fn no_link(&self) -> String {
        match &self.file {
            None => "no link to shape and capture: start qoelab serve with --uplink IFACE \
                     --downlink IFACE (or QOELAB_UPLINK and QOELAB_DOWNLINK)"
                .to_string(),
            Some(file) => format!(
                "no link to shape and capture on gateway {}: give its [[gateway]] entry in {} \
                 uplink and downlink",
                self.name,
                file.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/etc/qoelab/gateways.toml";

    fn parsed(text: &str) -> Result<Vec<Gateway>> {
        parse(Path::new(FILE), text)
    }

    fn error(text: &str) -> String {
        parsed(text).unwrap_err().to_string()
    }

    const TWO: &str = r#"
        [[gateway]]
        name = "gw-1"
        agent = "tcp://10.0.0.11:7070"
        agent_token_file = "/etc/qoelab/agent-token"
        uplink = "eth0"
        downlink = "eth1"
        video_server = "http://198.51.100.7:8080"
        iot_sink = "198.51.100.7:9000"

        [[gateway]]
        name = "gw-2"
        agent = "/run/qoelab/agent.sock"
        uplink = "wan"
        downlink = "lan"
        netns = "router"
        capture_iface = "lan"
    "#;

    #[test]
    fn a_file_lists_gateways_in_order() {
        let gateways = parsed(TWO).unwrap();
        assert_eq!(gateways.len(), 2);
        let (one, two) = (&gateways[0], &gateways[1]);
        assert_eq!((one.name.as_str(), two.name.as_str()), ("gw-1", "gw-2"));
        assert_eq!(
            one.agent_token_file.as_deref(),
            Some(Path::new("/etc/qoelab/agent-token"))
        );
        let link = one.link.link().unwrap();
        assert_eq!(
            (link.upload_iface.as_str(), link.capture_iface.as_str()),
            ("eth0", "eth1"),
            "captured on the downlink by default"
        );
        assert_eq!(one.link.iot_sink(), Some("198.51.100.7:9000"));
        assert_eq!(two.link.link().unwrap().netns.as_deref(), Some("router"));
        assert!(two.no_link().contains(FILE), "{}", two.no_link());
        let bare = parsed("[[gateway]]\nname = \"a\"\nagent = \"/s.sock\"\n").unwrap();
        assert!(bare[0].link.link().is_none());
    }

    #[test]
    fn every_bad_field_names_the_file_the_entry_the_field_the_value_and_the_form() {
        let entry = |extra: &str| {
            format!("[[gateway]]\nname = \"gw-1\"\nagent = \"/run/a.sock\"\n{extra}\n")
        };
        let cases: Vec<(String, &str)> = vec![
            (
                "[[gateway]]\nname = \"GW 1\"\nagent = \"/a.sock\"".into(),
                "gateway 1 (GW 1): name = 'GW 1' is not accepted: 1 to 32 lowercase letters",
            ),
            (
                "[[gateway]]\nagent = \"/a.sock\"".into(),
                "gateway 1: name = '' is not accepted: 1 to 32 lowercase letters, digits or '-', e.g. gw-1 (required)",
            ),
            (
                "[[gateway]]\nname = \"a\"".into(),
                "gateway 1 (a): agent = '' is not accepted: a socket path",
            ),
            (
                "[[gateway]]\nname = 7\nagent = \"/a.sock\"".into(),
                "gateway 1: name = '7' is not accepted: 1 to 32 lowercase letters, digits or '-', e.g. gw-1, in quotes",
            ),
            (
                entry("").replace("/run/a.sock", "tcp://10.0.0.1"),
                "gateway 1 (gw-1): agent = 'tcp://10.0.0.1' is not accepted: a socket path (/run/qoelab/agent.sock), unix:PATH, or tcp://HOST:PORT (the port is missing)",
            ),
            (
                entry("").replace("/run/a.sock", "tcp://10.0.0.1:7070"),
                "gateway 1 (gw-1): agent_token_file = '' is not accepted: the path of the file holding the agent's token (its --token-file) (an agent over TCP needs it)",
            ),
            (
                entry("uplink = \"eth0\""),
                "gateway 1 (gw-1): downlink = '' is not accepted: an interface name: uplink and downlink go together",
            ),
            (
                entry("uplink = \"eth0\"\ndownlink = \"a/b\""),
                "gateway 1 (gw-1): downlink = 'a/b' is not accepted: an interface name as `ip link` shows it",
            ),
            (
                entry("uplink = \"a-very-long-interface\"\ndownlink = \"lan\""),
                "uplink = 'a-very-long-interface' is not accepted: an interface name",
            ),
            (
                entry("capture_iface = \"two words\""),
                "capture_iface = 'two words' is not accepted: an interface name",
            ),
            (
                entry("netns = \"a/b\""),
                "gateway 1 (gw-1): netns = 'a/b' is not accepted: a namespace name as `ip netns list` shows it",
            ),
            (
                entry("video_server = \"198.51.100.7:8080\""),
                "gateway 1 (gw-1): video_server = '198.51.100.7:8080' is not accepted: http://HOST:PORT",
            ),
            (
                entry("iot_sink = \"198.51.100.7\""),
                "gateway 1 (gw-1): iot_sink = '198.51.100.7' is not accepted: HOST:PORT",
            ),
            (
                entry("up_link = \"eth0\""),
                "gateway 1 (gw-1): up_link = '\"eth0\"' is not accepted: not a field of a gateway; the fields are name, agent, agent_token_file, uplink, downlink, netns, capture_iface, video_server, iot_sink",
            ),
            (
                format!("{}{}", entry(""), entry("")),
                "gateway 2 (gw-1): name = 'gw-1' is not accepted: a name no other gateway has (gateway 1 has it)",
            ),
            (
                format!("{}[[gateway]]\nname = \"gw-2\"\nagent = true\n", entry("")),
                "gateway 2 (gw-2): agent = 'true' is not accepted: a socket path (/run/qoelab/agent.sock), unix:PATH, or tcp://HOST:PORT, in quotes",
            ),
            (
                "gateway = \"gw-1\"".into(),
                "gateway = \"gw-1\" is not accepted: one [[gateway]] table per gateway",
            ),
            (
                "gateway = [1]".into(),
                "gateway 1: gateway = '1' is not accepted: a table of name, agent",
            ),
            (
                format!("agent = \"/a.sock\"\n{}", entry("")),
                "agent is not accepted at the top level; accepted: one [[gateway]] table",
            ),
            (
                "".into(),
                "lists no gateway; accepted: one [[gateway]] table",
            ),
            ("[[gateway]\n".into(), "is not TOML"),
        ];
        for (text, expected) in cases {
            let err = error(&text);
            assert!(err.starts_with(FILE), "{err} does not name the file");
            assert!(err.contains(expected), "{err}\n  lacks {expected}");
        }
    }

    #[test]
    fn the_kubernetes_configmaps_gateways_file_is_valid() {
        let manifest = include_str!("../deploy/k8s/configmap.yaml");
        let (_, block) = manifest.split_once("gateways.toml: |\n").unwrap();
        let text: String = block
            .lines()
            .take_while(|l| l.is_empty() || l.starts_with("    "))
            .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
            .collect();
        let gateways = parsed(&text).unwrap();
        assert!(gateways.len() >= 2, "{gateways:?}");
        assert!(gateways.iter().all(|g| g.agent.starts_with("tcp://")));
    }

    #[test]
    fn options_define_one_gateway_and_cannot_be_mixed_with_a_file() {
        let gateways = load(None, GatewayArgs::default()).unwrap();
        assert_eq!(gateways[0].name, "default");
        assert_eq!(gateways[0].agent, "/run/qoelab/agent.sock");
        assert!(
            gateways[0]
                .no_link()
                .contains("--uplink IFACE --downlink IFACE")
        );
        let named = GatewayArgs {
            gateway_name: Some("Gw".into()),
            ..GatewayArgs::default()
        };
        let err = load(None, named).unwrap_err().to_string();
        assert!(
            err.starts_with("--gateway-name = 'Gw' is not accepted: 1 to 32"),
            "{err}"
        );
        let tcp = GatewayArgs {
            agent: Some("tcp://10.0.0.1:7070".into()),
            ..GatewayArgs::default()
        };
        let err = load(None, tcp).unwrap_err().to_string();
        assert!(
            err.starts_with("--agent-token-file = '' is not accepted"),
            "{err}"
        );
        let empty = GatewayArgs {
            agent: Some(String::new()),
            link: LinkArgs {
                uplink: Some(String::new()),
                downlink: Some(String::new()),
                video_server: Some(String::new()),
                ..LinkArgs::default()
            },
            ..GatewayArgs::default()
        };
        let gateways = load(None, empty).unwrap();
        assert_eq!(gateways[0].agent, "/run/qoelab/agent.sock");
        assert!(
            gateways[0].link.link().is_none(),
            "empty variables are not given"
        );
        let both = GatewayArgs {
            agent: Some("/a.sock".into()),
            link: LinkArgs {
                uplink: Some("eth0".into()),
                ..LinkArgs::default()
            },
            ..GatewayArgs::default()
        };
        let err = load(Some(Path::new(FILE)), both).unwrap_err().to_string();
        assert!(
            err.contains(&format!("--gateways {FILE}"))
                && err.contains("--agent (QOELAB_AGENT), --uplink (QOELAB_UPLINK) cannot"),
            "{err}"
        );
    }
}
