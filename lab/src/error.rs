//! Errors of lab construction and teardown; each says what went wrong and what to do.

use std::io;

/// Everything that can go wrong while building, using or removing a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The process lacks the privileges to create namespaces and links.
    #[error(
        "qoelab labs need root (capabilities CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network \
         namespaces and links; missing: {missing}. Run it as root, e.g. with sudo"
    )]
    NotPrivileged {
        /// The capabilities that are missing, comma separated.
        missing: String,
    },
    /// A lab with this name exists already.
    #[error(
        "a lab named '{name}' already exists: remove it with `qoelab lab down --name {name}` \
         or choose another --name"
    )]
    NameTaken {
        /// The lab name that is taken.
        name: String,
    },
    /// The kernel cannot create network namespaces.
    #[error(
        "this kernel cannot create network namespaces ({source}); use a kernel built with \
         CONFIG_NET_NS"
    )]
    NoNetns {
        /// The error unshare(2) returned.
        source: io::Error,
    },
    /// The kernel cannot create veth pairs.
    #[error(
        "this kernel cannot create veth pairs ({source}); load the module with `modprobe veth` \
         or use a kernel built with CONFIG_VETH"
    )]
    NoVeth {
        /// The error the kernel returned.
        source: io::Error,
    },
    /// A lab, node or interface name is not of the accepted form.
    #[error("{0}")]
    InvalidName(String),
    /// The topology description is inconsistent; nothing was created.
    #[error("invalid topology: {0}")]
    InvalidTopology(String),
    /// A lab or node that was asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A system call or netlink request failed; `what` names the step.
    #[error("{what}: {source}")]
    Os {
        /// The step that failed, e.g. "add address 198.18.1.2/24 to ql1-lan in ql1-router".
        what: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl LabError {
    /// Wraps an I/O error with the step that failed.
    pub fn os(what: impl Into<String>, source: impl Into<io::Error>) -> Self {
        LabError::Os {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// Converts an rtnetlink error into an I/O error carrying the kernel's errno where there is one.
pub(crate) fn netlink_io(err: rtnetlink::Error) -> io::Error {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

/// Result with [`LabError`].
pub type Result<T> = std::result::Result<T, LabError>;
