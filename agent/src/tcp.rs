//! The agent's API over TCP with a bearer token, for a server that drives agents on other
//! hosts (several gateways reporting to one server, a Kubernetes DaemonSet).
//!
//! A Unix socket proves who the peer is (SO_PEERCRED); a TCP connection does not, so every
//! request over TCP must carry `Authorization: Bearer TOKEN` with the token of the agent's
//! `--token-file`, compared in constant time. Anything else, including unknown paths, gets 401
//! with `WWW-Authenticate: Bearer`. The token file must not be accessible to other users
//! (mode `0600` or `0640`): the agent refuses to start otherwise.
//!
//! The token travels in clear text: listen on a private network (a VPN, a cluster network
//! restricted by a NetworkPolicy), not on the internet. Not here: TLS, several tokens, token
//! rotation without a restart.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use crate::server::{AgentError, AgentState, ApiError};

/// The fewest characters a token may have.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Where and with which token the agent listens on TCP.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// The address to listen on, e.g. `0.0.0.0:7070`.
    pub listen: SocketAddr,
    /// The file holding the token clients must send.
    pub token_file: PathBuf,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("cannot read the token file {}: {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why; in the message, not a `source()`, so that error chains print it once.
        error: io::Error,
    },
    /// Other users may read or change the token file.
    #[error(
        "the token file {} is accessible to every user (mode {mode:04o}); restrict it: chmod 600 {}",
        .path.display(), .path.display()
    )]
    OpenToOthers {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The token is too short or has characters an HTTP header cannot carry.
    #[error(
        "the token {where_} is not usable: {why}; use at least {MIN_TOKEN_CHARS} printable ASCII characters without spaces, e.g. from `openssl rand -hex 32`"
    )]
    Invalid {
        /// Where the token came from.
        where_: String,
        /// What is wrong with it.
        why: String,
    },
}

/// A bearer token: printable ASCII, no spaces, at least [`MIN_TOKEN_CHARS`] characters. Its
/// `Debug` form never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// A token from a string (surrounding whitespace, such as a final newline, is ignored);
    /// `where_` names its origin in errors.
    pub fn parse(token: &str, where_: &str) -> Result<Token, TokenError> {
        let token = token.trim();
        let invalid = |why: String| TokenError::Invalid {
            where_: where_.to_string(),
            why,
        };
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "it has spaces, control or non-ASCII characters".into(),
            ));
        }
        if token.len() < MIN_TOKEN_CHARS {
            return Err(invalid(format!("it has {} characters", token.len())));
        }
        Ok(Token(token.to_string()))
    }

    /// Reads the token from `path`, which other users may neither read nor write.
    pub fn read(path: &Path) -> Result<Token, TokenError> {
        let read = |error| TokenError::Read {
            path: path.to_path_buf(),
            error,
        };
        let mode = std::fs::metadata(path).map_err(read)?.permissions().mode() & 0o7777;
        if mode & 0o007 != 0 {
            return Err(TokenError::OpenToOthers {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Token::parse(&text, &format!("in {}", path.display()))
    }

    /// The token as sent in the header.
    pub(crate) fn secret(&self) -> &str {
        &self.0
    }

    /// Whether an `Authorization` header carries this token; the token comparison takes the
    /// same time wherever the two differ.
    fn check(&self, header: Option<&HeaderValue>) -> Result<(), &'static str> {
        let header = header.ok_or(
            "this agent needs `Authorization: Bearer TOKEN`, with the token of its --token-file",
        )?;
        let sent = header
            .as_bytes()
            .strip_prefix(b"Bearer ")
            .ok_or("the Authorization header must be `Bearer TOKEN`")?;
        if bool::from(sent.ct_eq(self.0.as_bytes())) {
            Ok(())
        } else {
            Err("the bearer token does not match the agent's --token-file")
        }
    }
}

async fn check_token(
    State(token): State<Arc<Token>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    match token.check(request.headers().get(header::AUTHORIZATION)) {
        Ok(()) => next.run(request).await,
        Err(why) => {
            tracing::warn!(%peer, why, "refused a TCP request");
            let mut response = ApiError::message(StatusCode::UNAUTHORIZED, why).into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"qoelab-agent\""),
            );
            response
        }
    }
}

/// The whole API behind the token check: every request, also to unknown paths.
pub fn router(state: AgentState, token: Token) -> Router {
    crate::server::api()
        .with_state(state)
        .layer(middleware::from_fn_with_state(Arc::new(token), check_token))
}

/// Serves the API on `listener` with `token` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AgentState,
    token: Token,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = router(state, token).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Reads the token and binds the address: the checks done before the agent drops privileges.
pub(crate) fn bind(config: &TcpConfig) -> Result<(std::net::TcpListener, Token), AgentError> {
    let token = Token::read(&config.token_file)?;
    let setup = |error| AgentError::Setup {
        what: format!("listen on tcp://{}", config.listen),
        error,
    };
    let listener = std::net::TcpListener::bind(config.listen).map_err(setup)?;
    listener.set_nonblocking(true).map_err(setup)?;
    Ok((listener, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).unwrap()
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let token = Token::parse("0123456789abcdef0123\n", "test").unwrap();
        assert!(
            token
                .check(Some(&header("Bearer 0123456789abcdef0123")))
                .is_ok()
        );
        for bad in [
            "Bearer 0123456789abcdef012",
            "Bearer 0123456789abcdef01234",
            "Bearer 0123456789abcdef0124",
            "bearer 0123456789abcdef0123",
            "Basic 0123456789abcdef0123",
            "0123456789abcdef0123",
            "Bearer ",
        ] {
            assert!(token.check(Some(&header(bad))).is_err(), "{bad}");
        }
        assert!(token.check(None).is_err());
    }

    #[test]
    fn short_or_unprintable_tokens_are_refused() {
        for bad in ["", "short", "0123456789abc def", "0123456789abcdéf0"] {
            let err = Token::parse(bad, "in t").unwrap_err().to_string();
            assert!(err.contains("openssl rand -hex 32"), "{err}");
        }
        assert_eq!(
            format!("{:?}", Token::parse("0123456789abcdef", "t").unwrap()),
            "Token(<redacted>)"
        );
    }
}
