//! The `--baseline-quinn` mode: a bare quinn 0.11 stream echo with no Shoal code. One
//! bidirectional stream per call: the client writes the payload and finishes, the server
//! reads to the end and writes it back, the client reads to the end. TLS 1.3 through rustls
//! with the ring provider, as Shoal's RPC uses.
//!
//! The certificate is generated at run time by the server with rcgen: **development only**.
//! Verification stays on: the client trusts exactly that certificate, which the server hands
//! over on its ready line.

use super::load::{check_echo, CallTarget};
use super::Payload;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, TransportConfig, VarInt};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// TLS server name the generated certificate is issued for.
pub const SERVER_NAME: &str = "localhost";
/// ALPN protocol of the bench.
pub const ALPN: &[u8] = b"shoal-bench-echo";
/// Largest request or reply the echo accepts.
pub const MAX_MESSAGE: usize = 1 << 20;

/// Errors setting up TLS or QUIC.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Cert(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// quinn refused the TLS configuration.
    #[error("QUIC TLS configuration: {0}")]
    QuicTls(String),
    /// Socket or endpoint error.
    #[error("endpoint: {0}")]
    Io(#[from] std::io::Error),
    /// Connecting failed.
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The handshake failed.
    #[error("handshake: {0}")]
    Connection(#[from] quinn::ConnectionError),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Transport settings tuned for a loopback echo with `streams` calls in flight per
/// connection: enough concurrent-stream credit that the client never waits for
/// MAX_STREAMS, windows far above what `streams × payload` needs, no keep-alive chatter.
/// `mtu`, if set, fixes the UDP payload size (no MTU discovery); otherwise quinn's default
/// (1200 bytes, discovery up to 1452).
pub fn transport(streams: u32, mtu: Option<u16>) -> TransportConfig {
    let mut t = TransportConfig::default();
    if let Some(mtu) = mtu {
        t.initial_mtu(mtu).mtu_discovery_config(None);
    }
    t.max_concurrent_bidi_streams(VarInt::from_u32(streams))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(VarInt::from_u32(MAX_MESSAGE as u32 * 2))
        .receive_window(VarInt::from_u32(64 << 20))
        .send_window(64 << 20)
        .max_idle_timeout(Some(
            VarInt::from_u32(30_000).into(), // milliseconds
        ))
        .keep_alive_interval(None);
    t
}

/// A server endpoint bound to `listen` with a fresh self-signed certificate. Returns the
/// endpoint and the certificate's DER (for the client to trust).
pub fn server_endpoint(
    listen: SocketAddr,
    streams: u32,
    mtu: Option<u16>,
) -> Result<(Endpoint, Vec<u8>), SetupError> {
    let certified = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()])?;
    let cert_der = certified.cert.der().to_vec();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(cert_der.clone())], key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.max_early_data_size = 0;
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| SetupError::QuicTls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport(streams, mtu)));
    let endpoint = Endpoint::server(config, listen)?;
    Ok((endpoint, cert_der))
}

/// Serves the echo until the endpoint closes.
pub async fn serve(endpoint: Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        super::rt::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                super::rt::spawn(async move {
                    let Ok(data) = recv.read_to_end(MAX_MESSAGE).await else {
                        return;
                    };
                    if send.write_all(&data).await.is_ok() {
                        let _ = send.finish();
                    }
                })
                .detach();
            }
        })
        .detach();
    }
}

/// The client's TLS/QUIC configuration, trusting exactly `cert_der`.
pub fn client_config(
    cert_der: &[u8],
    streams: u32,
    mtu: Option<u16>,
) -> Result<quinn::ClientConfig, SetupError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(cert_der.to_vec()))?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| SetupError::QuicTls(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport(streams, mtu)));
    Ok(config)
}

/// How the client's connections map onto client endpoints (UDP sockets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientEndpoints {
    /// One endpoint (socket and endpoint driver) per connection.
    #[default]
    PerConnection,
    /// All connections share one endpoint.
    Shared,
}

/// `connections` connections spread round-robin over `servers`, from one client endpoint
/// per connection or one shared endpoint.
pub struct QuinnEcho {
    conns: Vec<Connection>,
    endpoints: Vec<Endpoint>,
    payload: Payload,
}

impl QuinnEcho {
    /// Connects. `servers` lists each server's address and certificate.
    pub async fn connect(
        servers: &[(SocketAddr, Vec<u8>)],
        connections: usize,
        layout: ClientEndpoints,
        streams: u32,
        mtu: Option<u16>,
        payload: Payload,
    ) -> Result<Self, SetupError> {
        let mut conns = Vec::with_capacity(connections);
        let mut endpoints: Vec<Endpoint> = Vec::with_capacity(connections);
        for i in 0..connections {
            let (addr, cert) = &servers[i % servers.len()];
            if endpoints.is_empty() || layout == ClientEndpoints::PerConnection {
                endpoints.push(Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))?);
            }
            let endpoint = endpoints.last().expect("pushed above when empty");
            let conn = endpoint
                .connect_with(client_config(cert, streams, mtu)?, *addr, SERVER_NAME)?
                .await?;
            conns.push(conn);
        }
        Ok(QuinnEcho {
            conns,
            endpoints,
            payload,
        })
    }

    /// Closes every connection and waits (bounded) for the peers to be told.
    pub async fn close(&self) {
        for c in &self.conns {
            c.close(VarInt::from_u32(0), b"done");
        }
        for e in &self.endpoints {
            let _ =
                super::rt::timeout_at(Instant::now() + Duration::from_secs(1), e.wait_idle()).await;
        }
    }
}

impl CallTarget for QuinnEcho {
    async fn call(&self, slot: usize) -> Result<(), String> {
        let conn = &self.conns[slot % self.conns.len()];
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(&self.payload)
            .await
            .map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        let reply = recv
            .read_to_end(MAX_MESSAGE)
            .await
            .map_err(|e| e.to_string())?;
        check_echo(reply.len(), self.payload.len())
    }
}
