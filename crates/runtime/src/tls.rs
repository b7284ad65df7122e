//! TLS with client certificates (mTLS) between the participants and their
//! clients (`docs/tls.md`).
//!
//! - The files: `KEYS/tls/ca.pem` and `ca.key` (a test CA), and for every
//!   member `MEMBER.pem` and `MEMBER.key`, its certificate and key
//!   ([`TlsDir::init`], `egov keys init --tls`). A participant serves its
//!   member's certificate on its port and presents the same one when it calls
//!   another; a person's client presents the person's.
//! - A certificate names its member in one subject alternative name, the URI
//!   `egov-member:MEMBER` ([`member_of`]); its other names are the hosts it
//!   is served on (`localhost`, `127.0.0.1`, `::1`, and any more given).
//! - A TLS port takes a connection with any certificate, or none
//!   ([`ServerTls`]); [`PeerLayer`], a tower layer in front of every
//!   participant's services, refuses a call whose certificate is missing,
//!   not the CA's or out of its validity with a reason code, and reads the
//!   member of the others; the receive pipeline checks it against the
//!   envelope once ([`check_peer`]): the caller is the gateway where the
//!   envelope came through it (countersigned), else the envelope's sender.
//! - [`connect`] is the one function that builds a client channel, plaintext
//!   or TLS with a member's certificate.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};
use tonic::Code;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::around::{Around, BoxFuture, Inner, Response, Wrapped};
use crate::ids;
use crate::status::Refusal;

/// The scheme of the subject alternative name (a URI) that names a certificate's member.
pub const MEMBER_URI_SCHEME: &str = "egov-member:";

/// The hosts every certificate is valid for (loopback).
pub const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// A directory of certificates as `egov keys init --tls` writes it (`KEYS/tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsDir {
    path: PathBuf,
}

impl TlsDir {
    pub fn new(path: impl Into<PathBuf>) -> TlsDir {
        TlsDir { path: path.into() }
    }

    /// The `tls` directory of a key directory.
    pub fn of(keys: &crate::KeyDir) -> TlsDir {
        TlsDir::new(keys.path().join("tls"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn ca_path(&self) -> PathBuf {
        self.path.join("ca.pem")
    }

    fn ca_key_path(&self) -> PathBuf {
        self.path.join("ca.key")
    }

    pub fn cert_path(&self, member: &str) -> PathBuf {
        self.path.join(format!("{member}.pem"))
    }

    pub fn key_path(&self, member: &str) -> PathBuf {
        self.path.join(format!("{member}.key"))
    }

    fn read(path: &Path) -> anyhow::Result<String> {
        std::fs::read_to_string(path).with_context(|| {
            format!("cannot read {} (create the certificates with `egov keys init --tls`)", path.display())
        })
    }

    /// The CA's certificate and `member`'s certificate and key.
    fn identity(&self, member: &str) -> anyhow::Result<(Certificate, Identity)> {
        let ca = Certificate::from_pem(TlsDir::read(&self.ca_path())?);
        let cert = TlsDir::read(&self.cert_path(member))?;
        let key = TlsDir::read(&self.key_path(member))?;
        Ok((ca, Identity::from_pem(cert, key)))
    }

    /// What a participant run as `member` serves: its certificate, and the
    /// CA the callers' certificates must be issued by.
    pub fn server(&self, member: &str) -> anyhow::Result<ServerTls> {
        use rustls::pki_types::pem::PemObject as _;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let ca = TlsDir::read(&self.ca_path())?;
        for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            let cert = cert.with_context(|| format!("{} is not PEM", self.ca_path().display()))?;
            roots.add(cert).with_context(|| format!("{} is not a CA certificate", self.ca_path().display()))?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .with_context(|| format!("the CA of {}", self.ca_path().display()))?;
        let chain = TlsDir::read(&self.cert_path(member))?;
        let chain = CertificateDer::pem_slice_iter(chain.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{} is not PEM", self.cert_path(member).display()))?;
        let key = TlsDir::read(&self.key_path(member))?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
            .with_context(|| format!("{} is not a PEM key", self.key_path(member).display()))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(Deferred(Arc::clone(&verifier))))
            .with_single_cert(chain, key)
            .with_context(|| format!("the certificate and key of {member}"))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ServerTls { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), verifier })
    }

    /// What a client that is `member` connects with: the CA to check the
    /// server by, and the member's certificate to present.
    pub fn client(&self, member: &str) -> anyhow::Result<ClientTlsConfig> {
        let (ca, identity) = self.identity(member)?;
        Ok(ClientTlsConfig::new().ca_certificate(ca).identity(identity))
    }

    /// Creates the directory with a new CA and a certificate for each of
    /// `members`, valid from `not_before` to `not_after` (unix ms), for the
    /// loopback hosts and `hosts`. Refuses to overwrite an existing CA.
    pub fn init(&self, members: &[&str], hosts: &[String], not_before: i64, not_after: i64) -> anyhow::Result<()> {
        if self.ca_path().exists() {
            bail!(
                "{} already exists: remove {} first to make new certificates",
                self.ca_path().display(),
                self.path.display()
            );
        }
        std::fs::create_dir_all(&self.path).with_context(|| format!("cannot create {}", self.path.display()))?;
        let ca_key = rcgen::KeyPair::generate()?;
        let ca = ca_params(not_before, not_after)?.self_signed(&ca_key)?;
        write_file(&self.ca_path(), &ca.pem(), false)?;
        write_file(&self.ca_key_path(), &ca_key.serialize_pem(), true)?;
        for member in members {
            self.issue(member, hosts, not_before, not_after)?;
        }
        Ok(())
    }

    /// Issues `member` a certificate signed by the directory's CA, valid from
    /// `not_before` to `not_after` (unix ms), in place of the one it has.
    pub fn issue(&self, member: &str, hosts: &[String], not_before: i64, not_after: i64) -> anyhow::Result<()> {
        let (cert, key) = self.issued(member, hosts, not_before, not_after)?;
        let _ = std::fs::remove_file(self.key_path(member));
        write_file(&self.key_path(member), &key, true)?;
        write_file(&self.cert_path(member), &cert, false)
    }

    /// A certificate and key (PEM) for `member` signed by the directory's CA.
    pub fn issued(
        &self,
        member: &str,
        hosts: &[String],
        not_before: i64,
        not_after: i64,
    ) -> anyhow::Result<(String, String)> {
        if member.is_empty() || !member.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            bail!("member id {member:?} cannot name a certificate (letters, digits, '-', '_', '.')");
        }
        let ca_key = rcgen::KeyPair::from_pem(&TlsDir::read(&self.ca_key_path())?)
            .with_context(|| format!("{} is not a key", self.ca_key_path().display()))?;
        let issuer = rcgen::Issuer::from_ca_cert_pem(&TlsDir::read(&self.ca_path())?, ca_key)
            .with_context(|| format!("{} is not a CA certificate", self.ca_path().display()))?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(rcgen::DnType::CommonName, member);
        params.subject_alt_names.push(rcgen::SanType::URI(format!("{MEMBER_URI_SCHEME}{member}").try_into()?));
        for host in LOOPBACK_HOSTS.iter().map(|host| (*host).to_owned()).chain(hosts.iter().cloned()) {
            params.subject_alt_names.push(match host.parse::<std::net::IpAddr>() {
                Ok(ip) => rcgen::SanType::IpAddress(ip),
                Err(_) => rcgen::SanType::DnsName(host.as_str().try_into()?),
            });
        }
        params.extended_key_usages =
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.not_before = at(not_before)?;
        params.not_after = at(not_after)?;
        params.use_authority_key_identifier_extension = true;
        let key = rcgen::KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

fn ca_params(not_before: i64, not_after: i64) -> anyhow::Result<rcgen::CertificateParams> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, "egov test CA");
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "egov simulator");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = at(not_before)?;
    params.not_after = at(not_after)?;
    Ok(params)
}

fn at(unix_ms: i64) -> anyhow::Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000))
        .with_context(|| format!("{unix_ms} ms is no time a certificate can hold"))
}

fn write_file(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

/// The member a certificate (DER) names: its one `egov-member:` URI.
pub fn member_of(der: &[u8]) -> Result<String, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|error| format!("not a certificate: {error}"))?;
    let names = cert
        .subject_alternative_name()
        .map_err(|error| format!("its subject alternative names do not parse: {error}"))?;
    let mut members = names.iter().flat_map(|names| names.value.general_names.iter()).filter_map(|name| match name {
        x509_parser::extensions::GeneralName::URI(uri) => uri.strip_prefix(MEMBER_URI_SCHEME),
        _ => None,
    });
    match (members.next(), members.next()) {
        (Some(member), None) if !member.is_empty() => Ok(member.to_owned()),
        (None, _) => Err(format!("it names no member (no {MEMBER_URI_SCHEME}ID subject alternative name)")),
        _ => Err("it names more than one member".to_owned()),
    }
}

/// The member the first certificate of a PEM text names ([`member_of`]).
pub fn member_of_pem(pem: &str) -> Result<String, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|error| format!("not PEM: {error}"))?;
    member_of(&pem.contents)
}

/// Who called, as the certificate of the connection says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// The member the certificate names.
    Member(String),
    /// A certificate (or none) that names no member, and why.
    Unnamed(String),
}

tokio::task_local! {
    /// The caller of the current call, on a TLS port.
    static PEER: Peer;
}

/// The caller of the current call: `None` when the call came in plaintext
/// (or not through a server), so there is no certificate to check.
pub fn current_peer() -> Option<Peer> {
    PEER.try_with(Peer::clone).ok()
}

/// Runs `future` as a call from `peer` (what [`PeerLayer`] does; tests use it too).
pub async fn as_peer<F: Future>(peer: Peer, future: F) -> F::Output {
    PEER.scope(peer, future).await
}

/// The check of the receive pipeline, once the envelope is verified: the
/// caller's certificate is the one member that may make this call. A message
/// that came through the gateway (`countersigned`: the gateway's
/// countersignature verified; a delivery, a forwarded look-up) is the
/// gateway's to deliver, its sender's own included; any other is its sender's.
pub fn check_peer(sender_id: &str, countersigned: bool) -> Result<(), Refusal> {
    let expected = if countersigned { ids::GATEWAY } else { sender_id };
    match current_peer() {
        None => Ok(()),
        Some(Peer::Member(member)) if member == expected => Ok(()),
        Some(Peer::Member(member)) => Err(Refusal::new(
            Code::PermissionDenied,
            "tls.member_mismatch",
            if countersigned {
                format!(
                    "the client certificate is {member}'s; {sender_id}'s envelope, countersigned, is delivered by the gateway ({})",
                    ids::GATEWAY
                )
            } else {
                format!("the client certificate is {member}'s, not the envelope's sender's ({sender_id})")
            },
        )),
        Some(Peer::Unnamed(why)) => Err(Refusal::new(
            Code::PermissionDenied,
            "tls.unknown_member",
            format!("the client certificate names no member: {why}"),
        )),
    }
}

/// What a participant serves TLS with ([`TlsDir::server`]): the handshake
/// takes any client certificate whose key the caller holds, or none; the
/// certificate is checked against the CA by [`PeerLayer`] on each call, so
/// that a caller refused gets a status with a reason code, not a broken
/// connection.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: tokio_rustls::TlsAcceptor,
    verifier: Arc<dyn ClientCertVerifier>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls")
    }
}

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A connection that completed its TLS handshake.
pub type TlsConnection = tokio_rustls::server::TlsStream<TcpStream>;

impl ServerTls {
    /// The layer that checks each call's certificate.
    pub fn layer(&self) -> PeerLayer {
        PeerLayer { verifier: Some(Arc::clone(&self.verifier)) }
    }

    /// The connections of `listener` once their handshake is done (each
    /// handshake on a task of its own, so a slow one holds no other up). It
    /// stops accepting when the stream is dropped.
    pub fn incoming(
        &self,
        listener: TcpListener,
    ) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<TlsConnection>> {
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        let acceptor = self.acceptor.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = sender.closed() => return,
                };
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        continue;
                    }
                };
                // Small answers go out at once (see `server`).
                let _ = stream.set_nodelay(true);
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    let peer = stream.peer_addr().map(|address| address.to_string()).unwrap_or_default();
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(connection)) => {
                            let _ = sender.send(Ok(connection)).await;
                        }
                        Ok(Err(error)) => tracing::info!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(receiver)
    }
}

/// The handshake's client verifier: the caller proves it holds its
/// certificate's key; whether the certificate is valid is [`PeerLayer`]'s to say.
#[derive(Debug)]
struct Deferred(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for Deferred {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The refusal of a call whose certificate does not do.
fn refused_certificate(error: &rustls::Error) -> Refusal {
    let refused = |reason, message: String| Refusal::new(Code::Unauthenticated, reason, message);
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            refused("tls.certificate_expired", format!("the client certificate has expired ({error})"))
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => refused("tls.certificate_not_yet_valid", format!("the client certificate is not valid yet ({error})")),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => refused(
            "tls.unknown_issuer",
            format!("the client certificate is not issued by this exchange's CA ({error})"),
        ),
        _ => refused("tls.bad_certificate", format!("the client certificate is refused: {error}")),
    }
}

/// The caller of a request on a TLS port, or why it is refused.
fn peer_of<B>(request: &http::Request<B>, verifier: &dyn ClientCertVerifier) -> Result<Peer, Refusal> {
    let info = request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>();
    let certs = info.and_then(TlsConnectInfo::peer_certs);
    let Some((leaf, intermediates)) = certs.as_deref().and_then(|certs| certs.split_first()) else {
        return Err(Refusal::new(
            Code::Unauthenticated,
            "tls.no_certificate",
            "this port takes calls with a client certificate only (mTLS)",
        ));
    };
    // On the operational clock, the one place the system clock is read.
    let now = UnixTime::since_unix_epoch(std::time::Duration::from_millis(
        crate::Clock::now_ms(&crate::SystemClock).max(0) as u64,
    ));
    verifier.verify_client_cert(leaf, intermediates, now).map_err(|error| refused_certificate(&error))?;
    Ok(member_of(leaf.as_ref()).map_or_else(Peer::Unnamed, Peer::Member))
}

/// The tower layer in front of a TLS port's services: it refuses a call
/// without a valid client certificate (`tls.no_certificate`,
/// `tls.unknown_issuer`, `tls.certificate_expired`, ...) and makes the
/// certificate's member the [`current_peer`] of the others.
#[derive(Clone, Default)]
pub struct PeerLayer {
    /// None: a plaintext port.
    verifier: Option<Arc<dyn ClientCertVerifier>>,
}

impl std::fmt::Debug for PeerLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerLayer").field("tls", &self.verifier.is_some()).finish()
    }
}

impl<S> tower_layer::Layer<S> for PeerLayer {
    type Service = Wrapped<PeerLayer, S>;

    fn layer(&self, inner: S) -> Self::Service {
        Wrapped::new(self.clone(), inner)
    }
}

impl Around for PeerLayer {
    fn around<S, B>(&self, request: http::Request<B>, mut inner: S) -> BoxFuture<Result<Response, S::Error>>
    where
        S: Inner<B>,
        B: Send + 'static,
    {
        let Some(verifier) = &self.verifier else { return Box::pin(inner.call(request)) };
        match peer_of(&request, verifier.as_ref()) {
            Ok(peer) => Box::pin(PEER.scope(peer, inner.call(request))),
            Err(refusal) => {
                tracing::info!(reason = refusal.reason, message = %refusal.message, "call refused: its certificate");
                Box::pin(std::future::ready(Ok(refusal.into_status().into_http())))
            }
        }
    }
}

/// The one function that builds a client channel: to `address` (`host:port`),
/// lazily connecting, in plaintext when `tls` is `None`, else over TLS
/// checking the server by the directory's CA and presenting `member`'s certificate.
/// A list (`host:port,host:port`) names replicas of one participant: the calls are
/// balanced over those that answer, and a replica that is down is left out until it
/// is back (docs/scale-out.md).
/// Its calls carry their span's trace context ([`crate::trace::Propagate`]).
pub fn connect(address: &str, tls: Option<&TlsDir>, member: &str) -> anyhow::Result<crate::GrpcChannel> {
    let endpoint = |address: &str| -> anyhow::Result<tonic::transport::Endpoint> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{address}"))
            .with_context(|| format!("bad address {address}"))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .tcp_nodelay(true);
        if let Some(tls) = tls {
            let config = tls.client(member).with_context(|| format!("no TLS identity for {member}"))?;
            endpoint = endpoint.tls_config(config).with_context(|| format!("TLS to {address} as {member}"))?;
        }
        Ok(endpoint)
    };
    let addresses: Vec<&str> = address.split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
    if addresses.is_empty() {
        anyhow::bail!("no address given");
    }
    // A list names a participant's replicas: each call goes to one in turn, and on to
    // the next at once when one cannot be reached (`crate::failover`).
    let channels = addresses
        .iter()
        .map(|address| Ok(((*address).to_owned(), endpoint(address)?.connect_lazy())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(tonic::service::interceptor::InterceptedService::new(
        crate::failover::Failover::new(channels),
        crate::trace::Propagate,
    ))
}

/// What to tell the person whose call failed with `error` (the text of its
/// chain) when it looks like a client and a server that disagree on TLS.
pub fn hint(error: &str, tls: bool) -> Option<&'static str> {
    let has = |needles: &[&str]| needles.iter().any(|needle| error.contains(needle));
    if !tls
        && has(&[
            "connection closed",
            "broken pipe",
            "connection reset",
            "operation was canceled",
            "h2 protocol error",
            "frame with invalid size",
        ])
    {
        return Some(
            "the server closed the connection: if it serves mTLS (`egov serve --tls`), call it with --tls (docs/tls.md)",
        );
    }
    if tls && has(&["corrupt message", "InvalidContentType", "InvalidMessage"]) {
        return Some("the server does not answer in TLS: it serves plaintext, so call it without --tls");
    }
    if tls && has(&["invalid peer certificate"]) {
        return Some(
            "the server's certificate is not issued by the CA in the TLS directory (--tls-dir), or not for this host",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 86_400_000;

    #[test]
    fn a_certificate_names_its_member_and_only_it() {
        let temp = tempfile::tempdir().unwrap();
        let dir = TlsDir::new(temp.path().join("tls"));
        let now = 1_780_000_000_000;
        dir.init(&["operator-1", ids::GATEWAY], &["egov.example".to_owned()], now - DAY_MS, now + DAY_MS).unwrap();
        let der = |member: &str| {
            let pem = std::fs::read_to_string(dir.cert_path(member)).unwrap();
            let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
            pem.contents
        };
        assert_eq!(member_of(&der("operator-1")), Ok("operator-1".to_owned()));
        assert_eq!(member_of(&der(ids::GATEWAY)), Ok(ids::GATEWAY.to_owned()));
        // The CA's own certificate names no member.
        let (_, ca) = x509_parser::pem::parse_x509_pem(std::fs::read(dir.ca_path()).unwrap().as_slice()).unwrap();
        assert!(member_of(&ca.contents).unwrap_err().contains("names no member"));
        assert!(member_of(b"not a certificate").unwrap_err().contains("not a certificate"));
        // Two members in one certificate: it names none.
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        for member in ["a", "b"] {
            params.subject_alt_names.push(rcgen::SanType::URI(format!("egov-member:{member}").try_into().unwrap()));
        }
        let two = params.self_signed(&key).unwrap();
        assert!(member_of(two.der()).unwrap_err().contains("more than one"));
        // A member id that cannot be a file name is refused.
        assert!(dir.issue("../x", &[], now, now + DAY_MS).is_err());
        // The CA is not overwritten.
        assert!(dir.init(&["operator-1"], &[], now, now + DAY_MS).unwrap_err().to_string().contains("already exists"));
    }

    #[tokio::test]
    async fn the_caller_is_the_gateway_behind_it_else_the_sender() {
        // Plaintext: nothing to check.
        assert!(check_peer("operator-1", false).is_ok());
        let member = |id: &str| Peer::Member(id.to_owned());
        as_peer(member("operator-1"), async {
            assert!(check_peer("operator-1", false).is_ok());
            let refused = check_peer("operator-2", false).unwrap_err();
            assert_eq!((refused.code, refused.reason), (Code::PermissionDenied, "tls.member_mismatch"));
            assert!(refused.message.contains("operator-1") && refused.message.contains("operator-2"));
            assert_eq!(check_peer(ids::SC_WORKSTATION, true).unwrap_err().reason, "tls.member_mismatch");
        })
        .await;
        // A countersigned message comes from the gateway, not from its own sender directly.
        as_peer(member(ids::REGIONAL), async {
            assert_eq!(check_peer(ids::REGIONAL, true).unwrap_err().reason, "tls.member_mismatch");
        })
        .await;
        as_peer(member(ids::GATEWAY), async {
            assert!(check_peer(ids::SC_WORKSTATION, true).is_ok());
            assert!(check_peer(ids::GATEWAY, false).is_ok());
            // Not countersigned: the gateway does not speak for another member.
            assert_eq!(check_peer(ids::SC_WORKSTATION, false).unwrap_err().reason, "tls.member_mismatch");
        })
        .await;
        as_peer(Peer::Unnamed("no".to_owned()), async {
            assert_eq!(check_peer("operator-1", false).unwrap_err().reason, "tls.unknown_member");
        })
        .await;
    }
}
