//! `--web.config.file`: TLS, client certificates, basic auth and response headers, in the format
//! of Prometheus's exporter-toolkit, so the file written for node_exporter works here too.
//! [`parse`] is pure; [`WebSecurity::load`] reads the files it names.

use super::basic_auth::BasicAuth;
use crate::config::{error, parse_yaml, ConfigError};
use hyper::header::{HeaderName, HeaderValue};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file as written.
///
/// ```yaml
/// tls_server_config:
///   cert_file: server.crt          # relative paths are relative to this file
///   key_file: server.key
///   client_auth_type: RequireAndVerifyClientCert   # optional, with client_ca_file
///   client_ca_file: ca.crt
///   min_version: TLS12
/// http_server_config:
///   headers: {Strict-Transport-Security: max-age=31536000}
/// basic_auth_users:
///   prometheus: $2y$10$...         # bcrypt, e.g. from `htpasswd -nBC 10 prometheus`
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfigFile {
    pub tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    pub http_server_config: HttpServerConfig,
    /// User name to bcrypt hash.
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The certificate chain itself, in PEM, instead of `cert_file`.
    pub cert: Option<String>,
    /// The key itself, in PEM, instead of `key_file`.
    pub key: Option<String>,
    pub client_auth_type: Option<String>,
    pub client_ca_file: Option<PathBuf>,
    pub client_allowed_sans: Option<Vec<String>>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    // Go's TLS knobs: rustls's defaults (modern suites and curves only) are used instead.
    pub cipher_suites: Option<Vec<String>>,
    pub curve_preferences: Option<Vec<String>>,
    pub prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    /// Accepted for compatibility; this server speaks HTTP/1.1.
    pub http2: Option<bool>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// How clients must present certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    VerifyIfGiven,
    RequireAndVerify,
}

/// What the file means, validated; no files read yet.
#[derive(Debug, Clone)]
pub struct WebPlan {
    pub tls: Option<TlsPlan>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub users: BTreeMap<String, String>,
    /// Settings accepted but not applied, for a warning.
    pub ignored: Vec<&'static str>,
}

#[derive(Debug, Clone)]
pub struct TlsPlan {
    pub cert: PemSource,
    pub key: PemSource,
    pub client_auth: ClientAuth,
    pub client_ca: Option<PathBuf>,
    pub versions: Vec<&'static rustls::SupportedProtocolVersion>,
}

/// PEM text given inline or in a file.
#[derive(Debug, Clone)]
pub enum PemSource {
    Inline(String),
    File(PathBuf),
}

/// Parses and validates the text of a web config file. `dir` is where relative paths start
/// (the file's directory), `source` names the file in errors. Errors name the file, the field
/// and what was expected.
pub fn parse(text: &str, source: &str, dir: &Path) -> Result<WebPlan, ConfigError> {
    let file: WebConfigFile = parse_yaml(text, source)?;
    let mut ignored = Vec::new();
    let tls = match &file.tls_server_config {
        None => None,
        Some(t) => Some(tls_plan(t, source, dir, &mut ignored)?),
    };
    let mut headers = Vec::new();
    for (name, value) in &file.http_server_config.headers {
        let field = format!("http_server_config.headers.{name}");
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| error(source, &field, "is not a valid header name"))?;
        // These describe the body or the connection, which the server owns.
        if [
            "content-type",
            "content-length",
            "transfer-encoding",
            "connection",
            "www-authenticate",
        ]
        .contains(&n.as_str())
        {
            return Err(error(
                source,
                &field,
                "cannot be set; expected a header like Strict-Transport-Security or X-Frame-Options",
            ));
        }
        let v = HeaderValue::from_str(value)
            .map_err(|_| error(source, &field, "is not a valid header value"))?;
        headers.push((n, v));
    }
    if file.http_server_config.http2 == Some(true) {
        ignored.push("http_server_config.http2 (HTTP/1.1 is served)");
    }
    for (user, hash) in &file.basic_auth_users {
        let field = format!("basic_auth_users.{user}");
        if user.contains(':') || user.is_empty() {
            return Err(error(
                source,
                &field,
                "is not a valid user name; expected a name without ':'",
            ));
        }
        hash.parse::<bcrypt::HashParts>().map_err(|_| {
            error(
                source,
                &field,
                "is not a bcrypt hash; expected one like $2y$10$... (htpasswd -nBC 10 USER)",
            )
        })?;
    }
    Ok(WebPlan {
        tls,
        headers,
        users: file.basic_auth_users,
        ignored,
    })
}

fn tls_plan(
    t: &TlsServerConfig,
    source: &str,
    dir: &Path,
    ignored: &mut Vec<&'static str>,
) -> Result<TlsPlan, ConfigError> {
    let cert = pem_source(&t.cert, &t.cert_file, "cert", source, dir)?;
    let key = pem_source(&t.key, &t.key_file, "key", source, dir)?;
    let (client_auth, client_ca) = client_auth(t, source, dir)?;
    let versions = tls_versions(t, source)?;
    if t.cipher_suites.as_ref().is_some_and(|c| !c.is_empty()) {
        ignored.push("tls_server_config.cipher_suites (rustls's modern suites are used)");
    }
    if t.curve_preferences.as_ref().is_some_and(|c| !c.is_empty()) {
        ignored.push("tls_server_config.curve_preferences (rustls's defaults are used)");
    }
    if t.prefer_server_cipher_suites.is_some() {
        ignored.push("tls_server_config.prefer_server_cipher_suites");
    }
    Ok(TlsPlan {
        cert,
        key,
        client_auth,
        client_ca,
        versions,
    })
}

fn tls_field(name: &str) -> String {
    format!("tls_server_config.{name}")
}

/// A certificate or key: `name` with the PEM text or `name_file` with its path, one of them.
fn pem_source(
    inline: &Option<String>,
    file: &Option<PathBuf>,
    name: &str,
    source: &str,
    dir: &Path,
) -> Result<PemSource, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(error(
            source,
            tls_field(name),
            format!("is given with {name}_file; expected one of them"),
        )),
        (Some(text), None) => Ok(PemSource::Inline(text.clone())),
        (None, Some(path)) => Ok(PemSource::File(dir.join(path))),
        (None, None) => Err(error(
            source,
            tls_field(&format!("{name}_file")),
            format!("is missing; expected the path of a PEM file (or {name} with the PEM text)"),
        )),
    }
}

/// Whether clients must show a certificate, and the CA that signs them.
fn client_auth(
    t: &TlsServerConfig,
    source: &str,
    dir: &Path,
) -> Result<(ClientAuth, Option<PathBuf>), ConfigError> {
    let client_auth = match t.client_auth_type.as_deref().unwrap_or("NoClientCert") {
        "NoClientCert" => ClientAuth::None,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerify,
        other => {
            return Err(error(
                source,
                tls_field("client_auth_type"),
                format!(
                    "{other:?} is not supported; expected NoClientCert, VerifyClientCertIfGiven \
                     or RequireAndVerifyClientCert (certificates are always verified when given)"
                ),
            ))
        }
    };
    let client_ca = t.client_ca_file.as_ref().map(|p| dir.join(p));
    match (client_auth, &client_ca) {
        (ClientAuth::None, Some(_)) => {
            return Err(error(
                source,
                tls_field("client_ca_file"),
                "is given with client_auth_type NoClientCert; expected \
                 client_auth_type: RequireAndVerifyClientCert or VerifyClientCertIfGiven",
            ))
        }
        (ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify, None) => {
            return Err(error(
                source,
                tls_field("client_ca_file"),
                "is missing; expected the CA that signs client certificates",
            ))
        }
        _ => {}
    }
    if t.client_allowed_sans
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(error(
            source,
            tls_field("client_allowed_sans"),
            "is not supported; expected it absent (trust is given by client_ca_file)",
        ));
    }
    Ok((client_auth, client_ca))
}

/// The TLS versions between `min_version` (default TLS12) and `max_version` (default TLS13).
fn tls_versions(
    t: &TlsServerConfig,
    source: &str,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, ConfigError> {
    let version = |name: &str, v: &Option<String>, default: u8| -> Result<u8, ConfigError> {
        match v.as_deref() {
            None => Ok(default),
            Some("TLS12") => Ok(12),
            Some("TLS13") => Ok(13),
            Some(other) => Err(error(
                source,
                tls_field(name),
                format!("{other:?} is not supported; expected TLS12 or TLS13"),
            )),
        }
    };
    let (min, max) = (
        version("min_version", &t.min_version, 12)?,
        version("max_version", &t.max_version, 13)?,
    );
    if min > max {
        return Err(error(
            source,
            tls_field("max_version"),
            "is below min_version; expected TLS12 or TLS13, at least min_version",
        ));
    }
    Ok(
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect(),
    )
}

/// What the HTTP server applies to every connection and request.
#[derive(Default)]
pub struct WebSecurity {
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub auth: Option<BasicAuth>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for WebSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSecurity")
            .field("tls", &self.tls.is_some())
            .field("auth", &self.auth.is_some())
            .field("headers", &self.headers)
            .finish()
    }
}

impl WebSecurity {
    /// Reads the web config file and the certificates and keys it names. Errors, as [`parse`]'s,
    /// name the file, the field and what was expected.
    pub fn load(path: &Path) -> Result<WebSecurity, ConfigError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| error(&source, "", format!("cannot read the web config file: {e}")))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let plan = parse(&text, &source, dir)?;
        for what in &plan.ignored {
            tracing::warn!(file = %source, setting = what, "web config setting not applied");
        }
        let tls = plan
            .tls
            .as_ref()
            .map(|t| acceptor(t, &source))
            .transpose()?;
        if tls.is_none() && !plan.users.is_empty() {
            tracing::warn!(file = %source, "basic auth without TLS sends passwords in the clear");
        }
        Ok(WebSecurity {
            tls,
            auth: (!plan.users.is_empty()).then(|| BasicAuth::new(plan.users)),
            headers: plan.headers,
        })
    }
}

fn read_pem(source: &str, field: &str, pem: &PemSource) -> Result<Vec<u8>, ConfigError> {
    match pem {
        PemSource::Inline(text) => Ok(text.as_bytes().to_vec()),
        PemSource::File(path) => std::fs::read(path).map_err(|e| {
            error(
                source,
                field,
                format!("cannot read {}: {e}; expected a PEM file", path.display()),
            )
        }),
    }
}

fn certificates(
    source: &str,
    field: &str,
    pem: &PemSource,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = read_pem(source, field, pem)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(source, field, format!("is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(error(
            source,
            field,
            "holds no certificate; expected PEM with -----BEGIN CERTIFICATE-----",
        ));
    }
    Ok(certs)
}

/// Builds the TLS acceptor: the certificate chain, its key, and the client verifier.
fn acceptor(t: &TlsPlan, source: &str) -> Result<tokio_rustls::TlsAcceptor, ConfigError> {
    let field = |name: &str| format!("tls_server_config.{name}");
    let cert_field = field(match t.cert {
        PemSource::Inline(_) => "cert",
        PemSource::File(_) => "cert_file",
    });
    let key_field = field(match t.key {
        PemSource::Inline(_) => "key",
        PemSource::File(_) => "key_file",
    });
    let chain = certificates(source, &cert_field, &t.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&read_pem(source, &key_field, &t.key)?).map_err(|e| {
        error(
            source,
            &key_field,
            format!("holds no usable private key ({e}); expected PEM with a PKCS#8, PKCS#1 or SEC1 key"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&t.versions)
        .map_err(|e| error(source, field("min_version"), e.to_string()))?;
    let builder = match (&t.client_ca, t.client_auth) {
        (Some(ca), ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify) => {
            let ca_field = field("client_ca_file");
            let mut roots = rustls::RootCertStore::empty();
            for c in certificates(source, &ca_field, &PemSource::File(ca.clone()))? {
                roots
                    .add(c)
                    .map_err(|e| error(source, &ca_field, format!("holds a bad CA: {e}")))?;
            }
            let mut verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider);
            if t.client_auth == ClientAuth::VerifyIfGiven {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| error(source, &ca_field, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        error(
            source,
            &key_field,
            format!("does not match the certificate: {e}"),
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<WebPlan, ConfigError> {
        parse(text, "web.yml", Path::new("/etc/sqlite-ops"))
    }

    #[test]
    fn an_empty_file_is_plain_http_without_auth() {
        let plan = p("").unwrap();
        assert!(plan.tls.is_none() && plan.users.is_empty() && plan.headers.is_empty());
    }

    #[test]
    fn the_exporter_toolkit_format_is_read() {
        // What `htpasswd -nBC 4` writes.
        let hash = bcrypt::hash("pw", 4).unwrap().replacen("$2b$", "$2y$", 1);
        let plan = p(&format!(
            "tls_server_config:\n  cert_file: tls/server.crt\n  key_file: /abs/server.key\n  \
             min_version: TLS13\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n\
             http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n\
             basic_auth_users:\n  prometheus: '{hash}'\n"
        ))
        .unwrap();
        let tls = plan.tls.unwrap();
        assert!(
            matches!(&tls.cert, PemSource::File(f) if f == Path::new("/etc/sqlite-ops/tls/server.crt"))
        );
        assert!(matches!(&tls.key, PemSource::File(f) if f == Path::new("/abs/server.key")));
        assert_eq!(tls.client_auth, ClientAuth::RequireAndVerify);
        assert_eq!(tls.versions.len(), 1);
        assert_eq!(plan.headers[0].0.as_str(), "strict-transport-security");
        assert_eq!(plan.users["prometheus"], hash);
    }

    #[test]
    fn errors_name_the_field_and_what_was_expected() {
        let cases = [
            ("tls_server_config: {cert_file: a}\n", "tls_server_config.key_file", "is missing"),
            ("tls_server_config: {cert_file: a, key_file: b, min_version: TLS10}\n", "tls_server_config.min_version", "expected TLS12 or TLS13"),
            ("tls_server_config: {cert_file: a, key_file: b, min_version: TLS13, max_version: TLS12}\n", "tls_server_config.max_version", "below min_version"),
            ("tls_server_config: {cert_file: a, key_file: b, client_auth_type: RequireAnyClientCert}\n", "tls_server_config.client_auth_type", "not supported"),
            ("tls_server_config: {cert_file: a, key_file: b, client_auth_type: RequireAndVerifyClientCert}\n", "tls_server_config.client_ca_file", "is missing"),
            ("basic_auth_users: {alice: secret}\n", "basic_auth_users.alice", "not a bcrypt hash"),
            ("http_server_config: {headers: {Content-Type: x}}\n", "http_server_config.headers.Content-Type", "cannot be set"),
            ("tls_config: {}\n", "", "unknown field `tls_config`"),
        ];
        for (text, field, message) in cases {
            let e = p(text).unwrap_err();
            assert_eq!(e.source, "web.yml");
            assert_eq!(e.field, field, "{text}: {e}");
            assert!(e.message.contains(message), "{text}: {e}");
        }
    }

    #[test]
    fn go_only_knobs_are_accepted_and_reported_as_not_applied() {
        let plan = p("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n  prefer_server_cipher_suites: true\n").unwrap();
        assert_eq!(plan.ignored.len(), 2, "{:?}", plan.ignored);
    }

    #[test]
    fn unreadable_certificates_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(
            &path,
            "tls_server_config: {cert_file: nope.crt, key_file: nope.key}\n",
        )
        .unwrap();
        let e = WebSecurity::load(&path).unwrap_err();
        assert_eq!(e.field, "tls_server_config.cert_file");
        assert!(e.message.contains("nope.crt"), "{e}");
        std::fs::write(dir.path().join("junk.crt"), "hello\n").unwrap();
        std::fs::write(
            &path,
            "tls_server_config: {cert_file: junk.crt, key_file: nope.key}\n",
        )
        .unwrap();
        let e = WebSecurity::load(&path).unwrap_err();
        assert!(e.message.contains("holds no certificate"), "{e}");
    }
}
