//! Errors of the shaper; each says what was wrong, with which value, and what to do.

use std::io;

use crate::netlink::KernelError;
use crate::plan::PlanError;

/// Everything that can go wrong while shaping an interface.
#[derive(Debug, thiserror::Error)]
pub enum ShapeError {
    /// The plan (or the interface name) is not acceptable; nothing was changed.
    #[error("{0}")]
    Invalid(#[from] PlanError),
    /// The network namespace does not exist.
    #[error("netns = {netns}: no such network namespace; `ip netns list` shows the names")]
    UnknownNetns {
        /// The name given.
        netns: String,
    },
    /// The namespace exists, but entering it needs CAP_SYS_ADMIN, which this process lacks.
    #[error(
        "netns = {netns}: entering another network namespace needs CAP_SYS_ADMIN, which this agent runs without; shape interfaces of its own namespace, or grant it CAP_SYS_ADMIN"
    )]
    NetnsNotPermitted {
        /// The name given.
        netns: String,
    },
    /// The interface does not exist in its namespace.
    #[error("iface = {name}: no such interface{}; `ip link` shows the names", .netns.as_ref().map(|n| format!(" in namespace {n}")).unwrap_or_default())]
    UnknownInterface {
        /// The namespace.
        netns: Option<String>,
        /// The name given.
        name: String,
    },
    /// The kernel lacks a feature the plan needs; nothing was changed.
    #[error("{field}: {feature} is not available in this kernel")]
    MissingFeature {
        /// The plan field that needs it.
        field: String,
        /// The feature, with its kernel option.
        feature: String,
    },
    /// The interface is not shaped by this agent.
    #[error("{iface} is not shaped by this agent")]
    NotShaped {
        /// The interface.
        iface: String,
    },
    /// The interface has tc state this agent did not create and cannot restore.
    #[error("{0}")]
    Conflict(String),
    /// The kernel refused a value of the plan that validation let through; the previous plan
    /// was put back.
    #[error(
        "{field} = {value}: the kernel refused it ({source}); the previous plan is back in force; change this value"
    )]
    Rejected {
        /// The plan field, e.g. `egress.classes[1].impairment`.
        field: String,
        /// Its value in the plan.
        value: String,
        /// The kernel's answer.
        source: KernelError,
    },
    /// The kernel refused a request for a reason that is not the plan's; the previous state was
    /// put back.
    #[error("the kernel refused {what}: {source}")]
    Kernel {
        /// What was being done.
        what: String,
        /// The plan field the refused request carried out, if any.
        field: Option<String>,
        /// The kernel's answer.
        source: KernelError,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// The step that failed.
        what: String,
        /// The error.
        source: io::Error,
    },
}

impl ShapeError {
    /// Wraps an I/O error with the step that failed.
    pub fn io(what: impl Into<String>, source: io::Error) -> ShapeError {
        ShapeError::Io {
            what: what.into(),
            source,
        }
    }
}
