//! How the PostgreSQL backend reaches its database: the settings a
//! participant runs it with ([`PostgresSettings`]), the address read with its
//! TLS options (`sslmode`, `sslrootcert`, as libpq reads them), TLS on rustls,
//! and the address as it may be shown: without its password ([`redact`]).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::StoreError;

/// How a participant uses its database (`egov serve --store`, `docs/scale-out.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// Connections, each with a thread of its own, that one participant's backend keeps.
    pub pool: usize,
    /// How long a replica's claim on an outbox item holds before another replica may take it.
    pub lease: Duration,
    /// PostgreSQL's `statement_timeout` on every connection: a statement running longer is
    /// cancelled (the call is refused `store.unavailable`). Zero: none.
    pub statement_timeout: Duration,
    /// PostgreSQL's `lock_timeout`: a statement waiting longer for a lock is cancelled. Zero: none.
    pub lock_timeout: Duration,
    /// Who this replica is, in its claims on outbox items: a replica started again with the
    /// same identity takes its own claims back at once. Must differ between replicas that run
    /// at the same time. None: a name of its own for this process (the claims of a replica
    /// that dies then wait out their lease).
    pub replica: Option<String>,
    /// Whether opening the schema migrates it to this build's version (`egov serve`), or
    /// only reads it and refuses a schema at another version, changing nothing (the
    /// read-only tools: `egov audit verify`, `egov store check`, `egov sla report`).
    pub migrate: bool,
}

impl PostgresSettings {
    /// The settings of a tool that reads the database and changes no schema.
    pub fn read_only() -> PostgresSettings {
        PostgresSettings { migrate: false, ..PostgresSettings::default() }
    }

    pub const DEFAULT_POOL: usize = 8;
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

    /// What `SET`s a new connection with these settings, after its search path.
    pub(crate) fn session_sql(&self) -> String {
        format!(
            "SET statement_timeout = {}; SET lock_timeout = {}",
            self.statement_timeout.as_millis(),
            self.lock_timeout.as_millis()
        )
    }
}

impl Default for PostgresSettings {
    fn default() -> PostgresSettings {
        PostgresSettings {
            pool: PostgresSettings::DEFAULT_POOL,
            lease: PostgresSettings::DEFAULT_LEASE,
            statement_timeout: PostgresSettings::DEFAULT_STATEMENT_TIMEOUT,
            lock_timeout: PostgresSettings::DEFAULT_LOCK_TIMEOUT,
            replica: None,
            migrate: true,
        }
    }
}

/// `url` as it may be shown in a message or a log line: its password, in the
/// user part or as a `password` parameter, replaced by `***`.
pub fn redact(url: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(base, query)| (base, Some(query)));
    let mut shown = match base.split_once("://") {
        Some((scheme, rest)) => {
            // The user part ends at the last `@` before the path.
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((user, host)) => match user.split_once(':') {
                    Some((name, _)) => format!("{scheme}://{name}:***@{host}{path}"),
                    None => base.to_owned(),
                },
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        let parameters: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        shown = format!("{shown}?{}", parameters.join("&"));
    }
    shown
}

/// How TLS to the database is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verify {
    /// Encrypted, the server's certificate not checked (`sslmode=require`, `prefer`).
    Nothing,
    /// The certificate must be issued by the CA of this file (`verify-ca`, or `require` with `sslrootcert`).
    Ca(PathBuf),
    /// And be for the host connected to (`verify-full`).
    Full(PathBuf),
}

/// A database address, read: the client's configuration and how TLS is checked.
pub(crate) struct Target {
    pub(crate) config: tokio_postgres::Config,
    verify: Verify,
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(byte) = text.get(index + 1..index + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads `url` (`postgres://user:password@host:port/db?sslmode=verify-full&sslrootcert=ca.pem`).
/// `sslmode` takes libpq's values: `disable`, `allow` and `prefer` (TLS when the server has it),
/// `require` (TLS, the certificate checked only when `sslrootcert` is given), `verify-ca` and
/// `verify-full` (which need `sslrootcert`). An error never shows the password.
pub(crate) fn target(url: &str) -> Result<Target, StoreError> {
    let bad = |why: String| StoreError::Address { reason: format!("{}: {why}", redact(url)) };
    let (base, query) = url.split_once('?').map_or((url, None), |(base, query)| (base, Some(query)));
    let mut mode = None;
    let mut root = None;
    let mut rest = Vec::new();
    for pair in query.into_iter().flat_map(|query| query.split('&')).filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", value)) => mode = Some(percent_decoded(value)),
            Some(("sslrootcert", value)) => root = Some(PathBuf::from(percent_decoded(value))),
            _ => rest.push(pair),
        }
    }
    let plain = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    let mut config: tokio_postgres::Config =
        plain.parse().map_err(|error: tokio_postgres::Error| bad(error.to_string()))?;
    if let Some(root) = &root
        && let Err(error) = std::fs::File::open(root)
    {
        return Err(bad(format!("sslrootcert {}: {error}", root.display())));
    }
    let needs_root = |mode: &str| {
        root.clone().ok_or_else(|| bad(format!("sslmode={mode} needs sslrootcert=FILE, the CA's certificate (PEM)")))
    };
    let verify = match mode.as_deref().unwrap_or("prefer") {
        "disable" => {
            config.ssl_mode(SslMode::Disable);
            Verify::Nothing
        }
        "allow" | "prefer" => {
            config.ssl_mode(SslMode::Prefer);
            root.clone().map_or(Verify::Nothing, Verify::Ca)
        }
        "require" => {
            config.ssl_mode(SslMode::Require);
            root.clone().map_or(Verify::Nothing, Verify::Ca)
        }
        "verify-ca" => {
            config.ssl_mode(SslMode::Require);
            Verify::Ca(needs_root("verify-ca")?)
        }
        "verify-full" => {
            config.ssl_mode(SslMode::Require);
            Verify::Full(needs_root("verify-full")?)
        }
        other => {
            return Err(bad(format!(
                "sslmode={other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
            )));
        }
    };
    if config.get_connect_timeout().is_none() {
        // A database that is down must not hold a participant's calls for long.
        config.connect_timeout(Duration::from_secs(5));
    }
    Ok(Target { config, verify })
}

impl Target {
    /// A blocking connection, over TLS as the address says (the schema's migrations and checks).
    pub(crate) fn connect(&self) -> Result<postgres::Client, postgres::Error> {
        postgres::Config::from(self.config.clone()).connect(Rustls { config: self.tls_config() })
    }

    /// A connection for a runtime of the caller's, over TLS as the address says: the client,
    /// and the connection's task, which the caller spawns on that runtime.
    pub(crate) async fn connect_async(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<tokio_postgres::Socket, RustlsStream<tokio_postgres::Socket>>,
        ),
        tokio_postgres::Error,
    > {
        self.config.connect(Rustls { config: self.tls_config() }).await
    }

    /// The rustls client configuration; an unreadable CA file is a configuration that trusts
    /// nothing, so that a connection that needs it fails, saying so.
    fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| unreachable_versions());
        let config = match &self.verify {
            Verify::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
                .with_no_client_auth(),
            Verify::Ca(path) | Verify::Full(path) => {
                let roots = roots(path);
                let full = matches!(self.verify, Verify::Full(_));
                match rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build() {
                    Ok(webpki) => builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(Checked { webpki, full }))
                        .with_no_client_auth(),
                    Err(_) => builder.with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth(),
                }
            }
        };
        Arc::new(config)
    }
}

#[allow(clippy::panic)]
fn unreachable_versions() -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
    panic!("ring supports TLS 1.2 and 1.3")
}

/// The CA certificates of `path` (PEM); none when it cannot be read (every certificate is then refused).
fn roots(path: &std::path::Path) -> rustls::RootCertStore {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    match CertificateDer::pem_file_iter(path) {
        Ok(certificates) => {
            for certificate in certificates.flatten() {
                if let Err(error) = roots.add(certificate) {
                    tracing::warn!(file = %path.display(), %error, "a certificate of sslrootcert is not a CA's");
                }
            }
        }
        Err(error) => tracing::error!(file = %path.display(), %error, "cannot read sslrootcert"),
    }
    roots
}

/// `sslmode=require`: the session is encrypted, the certificate is not checked (as libpq).
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca` and `verify-full`: the chain to the CA, and for `verify-full` the host's name.
#[derive(Debug)]
struct Checked {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    full: bool,
}

impl rustls::client::danger::ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. },
            )) if !self.full => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// tokio-postgres's TLS over rustls.
#[derive(Clone)]
struct Rustls {
    config: Arc<rustls::ClientConfig>,
}

impl<S> MakeTlsConnect<S> for Rustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, Self::Error> {
        let name = ServerName::try_from(domain.to_owned())?;
        Ok(RustlsConnect { config: Arc::clone(&self.config), name })
    }
}

struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

type Handshake<S> = Pin<Box<dyn Future<Output = std::io::Result<RustlsStream<S>>> + Send>>;

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = std::io::Error;
    type Future = Handshake<S>;

    fn connect(self, stream: S) -> Handshake<S> {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move { Ok(RustlsStream(connector.connect(self.name, stream).await?)) })
    }
}

pub(crate) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM's channel binding (tls-server-end-point) is not offered: the password
        // exchange is SCRAM over the encrypted session.
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        assert_eq!(redact("postgres://egov:s3cret@db:5432/egov"), "postgres://egov:***@db:5432/egov");
        assert_eq!(
            redact("postgres://egov:p@ss@db/egov?sslmode=require"),
            "postgres://egov:***@db/egov?sslmode=require"
        );
        assert_eq!(redact("postgres://egov@db/egov?password=s3cret&x=1"), "postgres://egov@db/egov?password=***&x=1");
        assert_eq!(redact("postgres://db/egov"), "postgres://db/egov");
        for url in ["postgres://egov:s3cret@db:notaport/egov", "postgres://egov:s3cret@db/egov?sslmode=verify-full"] {
            let Err(error) = target(url) else { panic!("{url} was taken") };
            assert!(!error.to_string().contains("s3cret"), "{error}");
            assert!(error.to_string().contains("***"), "{error}");
        }
        let Err(error) = target("postgres://egov:s3cret@db/egov?sslmode=sometimes") else { panic!("taken") };
        assert!(error.to_string().contains("sometimes") && !error.to_string().contains("s3cret"), "{error}");
        // An address that cannot be used is not waited for: it is not the database being down.
        let Err(error) = target("postgres://egov@db/egov?sslmode=verify-full&sslrootcert=/no/such/ca.pem") else {
            panic!("taken")
        };
        assert!(matches!(error, StoreError::Address { .. }), "{error:?}");
        assert!(error.to_string().contains("sslrootcert /no/such/ca.pem"), "{error}");
    }
}
