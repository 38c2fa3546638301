//! [`TlsConfig`]: the certificates a node presents and the roots it trusts, for QUIC (rustls
//! on the `ring` provider, TLS 1.3 only, as QUIC requires).
//!
//! Production: bring your own certificate chain, private key and CA roots
//! ([`TlsConfig::new`], [`TlsConfig::from_pem`]); [`TlsConfig::with_client_auth`] turns on
//! mutual TLS. Every peer verifies the other against the roots; verification is never turned
//! off.
//!
//! Development: [`TlsConfig::insecure_dev_self_signed`] generates, at run time, a cluster CA
//! (one per process) and a node certificate signed by it, and logs a warning. Nothing is
//! checked in, so nothing expires on the shelf (rpcnet's bundled certificate did). For a
//! development cluster spanning processes, generate a [`DevCa`], issue each node's
//! certificate from it ([`DevCa::issue`]) and write them out ([`DevCa::ca_pem`]).

use crate::rpc::error::ConfigError;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::{Arc, OnceLock};

/// ALPN protocol id of Shoal RPC; both ends must offer it.
pub const ALPN: &[u8] = b"shoal-rpc/1";

/// The DNS name every certificate of a cluster carries by default and every client checks.
/// Nodes are addressed by IP and found by gossip, so a shared cluster name (rather than one
/// name per host) is what the certificate vouches for: "a member of this cluster".
pub const DEFAULT_SERVER_NAME: &str = "shoal.cluster";

/// The certificates of one node and the roots it trusts.
#[derive(Debug)]
pub struct TlsConfig {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
    pub(crate) roots: Vec<CertificateDer<'static>>,
    pub(crate) client_auth: bool,
    pub(crate) server_name: String,
    pub(crate) dev: bool,
}

impl Clone for TlsConfig {
    fn clone(&self) -> Self {
        TlsConfig {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            roots: self.roots.clone(),
            client_auth: self.client_auth,
            server_name: self.server_name.clone(),
            dev: self.dev,
        }
    }
}

impl TlsConfig {
    /// A node's certificate chain (leaf first), its private key and the CA roots it trusts
    /// for peers. The leaf must be valid for [`TlsConfig::with_server_name`] (default
    /// [`DEFAULT_SERVER_NAME`]) and, for mutual TLS, usable for client authentication too.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        roots: Vec<CertificateDer<'static>>,
    ) -> Self {
        TlsConfig {
            chain,
            key,
            roots,
            client_auth: false,
            server_name: DEFAULT_SERVER_NAME.to_owned(),
            dev: false,
        }
    }

    /// [`TlsConfig::new`] from PEM text (certificate chain, private key, CA roots).
    pub fn from_pem(chain: &str, key: &str, roots: &str) -> Result<Self, ConfigError> {
        let certs = |pem: &str, what| {
            CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ConfigError::Tls(format!("{what}: {e}")))
                .and_then(|v| {
                    if v.is_empty() {
                        Err(ConfigError::Tls(format!(
                            "{what}: no certificate in the PEM"
                        )))
                    } else {
                        Ok(v)
                    }
                })
        };
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
            .map_err(|e| ConfigError::Tls(format!("private key: {e}")))?;
        Ok(TlsConfig::new(
            certs(chain, "certificate chain")?,
            key,
            certs(roots, "CA roots")?,
        ))
    }

    /// **Development only.** A node certificate signed by this process's generated
    /// development CA (created on first use, kept for the life of the process), trusting only
    /// that CA. Certificates are generated at run time and fully verified; but anyone holding
    /// the generated CA key could join, and peers in other processes will not trust it unless
    /// they share the CA ([`DevCa`]). Logs a warning every time.
    pub fn insecure_dev_self_signed() -> Self {
        static CA: OnceLock<DevCa> = OnceLock::new();
        let ca = CA.get_or_init(|| {
            // Generating an ECDSA key and self-signing cannot fail with rcgen's defaults.
            DevCa::generate().expect("generating a development CA")
        });
        ca.node_config()
            .expect("issuing a development certificate from a valid CA")
    }

    /// Requires and verifies client certificates (mutual TLS): a server then accepts only
    /// peers whose certificate chains to the roots, and the client presents its own chain.
    pub fn with_client_auth(mut self, required: bool) -> Self {
        self.client_auth = required;
        self
    }

    /// The DNS name servers' certificates must carry and clients check (default
    /// [`DEFAULT_SERVER_NAME`]).
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = name.into();
        self
    }

    /// Whether this is a generated development configuration.
    pub fn is_dev(&self) -> bool {
        self.dev
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn root_store(&self) -> Result<rustls::RootCertStore, ConfigError> {
        let mut roots = rustls::RootCertStore::empty();
        for r in &self.roots {
            roots
                .add(r.clone())
                .map_err(|e| ConfigError::Tls(format!("CA root: {e}")))?;
        }
        if roots.is_empty() {
            return Err(ConfigError::Tls(
                "no CA roots: peers could never be verified".into(),
            ));
        }
        Ok(roots)
    }

    fn warn_dev(&self) {
        if self.dev {
            tracing::warn!(
                "RPC uses a generated development certificate (TlsConfig::insecure_dev_self_signed): \
                 for local development only; configure real certificates for production"
            );
        }
    }

    /// The quinn server crypto config.
    pub(crate) fn server_config(
        &self,
    ) -> Result<quinn::crypto::rustls::QuicServerConfig, ConfigError> {
        self.warn_dev();
        let tls = |e: rustls::Error| ConfigError::Tls(e.to_string());
        let builder = rustls::ServerConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls)?;
        let builder = if self.client_auth {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(self.root_store()?),
                Self::provider(),
            )
            .build()
            .map_err(|e| ConfigError::Tls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut cfg = builder
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(tls)?;
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        quinn::crypto::rustls::QuicServerConfig::try_from(cfg)
            .map_err(|e| ConfigError::Tls(e.to_string()))
    }

    /// The quinn client crypto config.
    pub(crate) fn client_config(
        &self,
    ) -> Result<quinn::crypto::rustls::QuicClientConfig, ConfigError> {
        self.warn_dev();
        let tls = |e: rustls::Error| ConfigError::Tls(e.to_string());
        let builder = rustls::ClientConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls)?
            .with_root_certificates(self.root_store()?);
        let mut cfg = if self.client_auth {
            builder
                .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
                .map_err(tls)?
        } else {
            builder.with_no_client_auth()
        };
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        quinn::crypto::rustls::QuicClientConfig::try_from(cfg)
            .map_err(|e| ConfigError::Tls(e.to_string()))
    }
}

/// A generated development CA: issues node certificates for [`DEFAULT_SERVER_NAME`] (and
/// `localhost`) usable for both server and client authentication. For development and tests
/// only: it holds the CA private key in memory, so treat the process like any CA.
pub struct DevCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa").finish_non_exhaustive()
    }
}

impl DevCa {
    /// A fresh CA with a new ECDSA P-256 key.
    pub fn generate() -> Result<Self, ConfigError> {
        let key = KeyPair::generate().map_err(rcgen_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_err)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Shoal development cluster CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(rcgen_err)?;
        Ok(DevCa { cert, key })
    }

    /// The CA certificate (DER), to trust as a root.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// Issues a node certificate and returns a [`TlsConfig`] trusting this CA (flagged as a
    /// development config, so it warns when used).
    pub fn node_config(&self) -> Result<TlsConfig, ConfigError> {
        let (chain, key) = self.issue(DEFAULT_SERVER_NAME)?;
        let mut tls = TlsConfig::new(chain, key, vec![self.cert_der()]);
        tls.dev = true;
        Ok(tls)
    }

    /// Issues a certificate for `name` (plus `localhost`), valid from 1975 to 4096 (rcgen's
    /// defaults), returning the chain and key.
    pub fn issue(
        &self,
        name: &str,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
        self.issue_with_validity(name, None)
    }

    /// Issues a certificate for `name` valid only between two dates `(year, month, day)`:
    /// for testing how expired or not-yet-valid certificates are refused.
    pub fn issue_valid_between(
        &self,
        name: &str,
        from: (i32, u8, u8),
        until: (i32, u8, u8),
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
        self.issue_with_validity(name, Some((from, until)))
    }

    fn issue_with_validity(
        &self,
        name: &str,
        validity: Option<(Ymd, Ymd)>,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
        let key = KeyPair::generate().map_err(rcgen_err)?;
        let mut params = CertificateParams::new(vec![name.to_owned(), "localhost".to_owned()])
            .map_err(rcgen_err)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if let Some((from, until)) = validity {
            params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
            params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
        }
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(rcgen_err)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((vec![cert.der().clone()], key))
    }

    /// The CA certificate as PEM, to trust as a root elsewhere.
    pub fn ca_pem(&self) -> String {
        self.cert.pem()
    }
}

/// A calendar date as (year, month, day).
type Ymd = (i32, u8, u8);

fn rcgen_err(e: rcgen::Error) -> ConfigError {
    ConfigError::Tls(format!("certificate generation: {e}"))
}
