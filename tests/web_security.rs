//! `--web.config.file` (exporter-toolkit's format): TLS with a certificate made here, basic auth
//! against bcrypt hashes, client certificates, extra headers, and a real Prometheus scraping
//! over https with credentials. Certificates come from rcgen; the client is ureq over rustls.

use crate::common;

use common::{run_cli, wait_for, Daemon, Prometheus, STEP};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::time::Duration;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

/// A CA, and certificates it signs.
struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let ca_pem = params.self_signed(&key).unwrap().pem();
        Pki {
            ca_pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// (certificate PEM, key PEM) for `names`, for a server or a client.
    fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// Everything a TLS test needs on disk: the CA, the server's certificate and key.
struct Files {
    dir: tempfile::TempDir,
    pki: Pki,
    db: PathBuf,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new("sqlite-ops test CA");
        let (cert, key) = pki.leaf(
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        std::fs::write(dir.path().join("ca.crt"), &pki.ca_pem).unwrap();
        std::fs::write(dir.path().join("server.crt"), cert).unwrap();
        std::fs::write(dir.path().join("server.key"), key).unwrap();
        let db = dir.path().join("app.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        Files { dir, pki, db }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes web.yml with `text` and returns its path.
    fn web_config(&self, text: &str) -> PathBuf {
        let path = self.path("web.yml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn start(&self, web_config: &Path) -> Daemon {
        Daemon::start(&[
            "--db",
            self.db.to_str().unwrap(),
            "--web.config.file",
            web_config.to_str().unwrap(),
        ])
    }
}

/// A bcrypt hash as htpasswd writes it (cost 4: the daemon under test is a debug build).
fn hash(password: &str) -> String {
    bcrypt::hash(password, 4)
        .unwrap()
        .replacen("$2b$", "$2y$", 1)
}

/// A client trusting `ca_pem`, with an optional client certificate.
fn agent(ca_pem: Option<&str>, client: Option<&(String, String)>) -> ureq::Agent {
    let mut tls = TlsConfig::builder();
    if let Some(ca) = ca_pem {
        let ca = Certificate::from_pem(ca.as_bytes()).unwrap();
        tls = tls.root_certs(RootCerts::new_with_certs(&[ca]));
    }
    if let Some((cert, key)) = client {
        let cert = Certificate::from_pem(cert.as_bytes()).unwrap();
        let key = PrivateKey::from_pem(key.as_bytes()).unwrap();
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&[cert], key)));
    }
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .tls_config(tls.build())
        .build()
        .into()
}

/// GET with optional basic credentials: (status, WWW-Authenticate, X-Frame-Options, body), or
/// the transport error.
fn get(
    agent: &ureq::Agent,
    url: &str,
    user: Option<(&str, &str)>,
) -> Result<(u16, String, String, String), ureq::Error> {
    let mut req = agent.get(url);
    if let Some((u, p)) = user {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req = req.header("Authorization", format!("Basic {token}"));
    }
    let mut resp = req.call()?;
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (auth, frame) = (header("www-authenticate"), header("x-frame-options"));
    Ok((
        resp.status().as_u16(),
        auth,
        frame,
        resp.body_mut().read_to_string().unwrap(),
    ))
}

#[test]
fn tls_and_basic_auth_guard_every_endpoint_but_healthz() {
    let f = Files::new();
    let web = f.web_config(&format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
         http_server_config:\n  headers: {{X-Frame-Options: DENY}}\n\
         basic_auth_users:\n  prometheus: '{}'\n",
        hash("s3cret")
    ));
    let daemon = f.start(&web);
    // The address file is written as soon as the socket is bound; the log line may follow.
    daemon.wait_log("the log saying https", |l| {
        l.contains("listening on https://")
    });
    let base = format!("https://{}", daemon.addr);
    let client = agent(Some(&f.pki.ca_pem), None);

    let good = Some(("prometheus", "s3cret"));
    // The first poll may end after the socket is bound: wait for it, through TLS and auth.
    let mut last = String::new();
    let frame = common::wait_until(Duration::from_secs(30), || {
        let (status, _, frame, body) = get(&client, &format!("{base}/metrics"), good).unwrap();
        assert_eq!(status, 200, "{body}");
        let polled = body.contains("sqlite_up{db=\"app\"} 1");
        last = body;
        polled.then_some(frame)
    })
    .unwrap_or_else(|| panic!("no sqlite_up{{db=\"app\"}} 1 within 30 s:\n{last}"));
    assert_eq!(frame, "DENY", "configured headers are sent");
    // The status page and its data behind the same TLS and credentials.
    let (status, _, _, page) = get(&client, &format!("{base}/"), good).unwrap();
    assert!(
        status == 200 && page.contains("<section class=\"db\" id=\"db-app\""),
        "{page}"
    );
    let (status, _, _, history) = get(&client, &format!("{base}/api/v1/history"), good).unwrap();
    assert!(
        status == 200 && history.contains("\"db\":\"app\""),
        "{history}"
    );

    for (path, user) in [
        ("/metrics", None),
        ("/metrics", Some(("prometheus", "wrong"))),
        ("/metrics", Some(("nobody", "s3cret"))),
        ("/api/v1/status", None),
        ("/api/v1/history", None),
        ("/", None),
    ] {
        let (status, challenge, frame, _) = get(&client, &format!("{base}{path}"), user).unwrap();
        assert_eq!(status, 401, "{path} with {user:?}");
        assert!(challenge.starts_with("Basic realm="), "{path}: {challenge}");
        assert_eq!(frame, "DENY", "headers on refusals too");
    }
    let (status, ..) = get(&client, &format!("{base}/healthz"), None).unwrap();
    assert_eq!(status, 200, "liveness probes need no credentials");

    // Plain HTTP to the TLS port, and a client that does not trust the CA, get nothing.
    let plain = format!("http://{}/healthz", daemon.addr);
    assert!(
        get(&agent(None, None), &plain, None).map_or(true, |r| r.0 != 200),
        "plain HTTP is not served"
    );
    assert!(
        get(&agent(None, None), &format!("{base}/healthz"), None).is_err(),
        "the certificate is the one made here, trusted only through its CA"
    );
}

#[test]
fn a_real_prometheus_scrapes_over_https_with_credentials() {
    let f = Files::new();
    let web = f.web_config(&format!(
        "tls_server_config: {{cert_file: server.crt, key_file: server.key}}\n\
         basic_auth_users: {{prometheus: '{}'}}\n",
        hash("s3cret")
    ));
    let daemon = f.start(&web);
    let ca = f.path("ca.crt");
    let job = |name: &str, password: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config: {{ca_file: '{}'}}\n    \
             basic_auth: {{username: prometheus, password: '{password}'}}\n    \
             static_configs: [{{targets: ['{}']}}]\n",
            ca.display(),
            daemon.addr
        )
    };
    let jobs = job("good", "s3cret") + &job("wrong-password", "nope");
    let prometheus = Prometheus::start_with_jobs(&f.path("prometheus"), &jobs);
    wait_for(STEP, "both jobs scraped", || {
        (prometheus.query("up{job=\"good\"} == 1").1 == 1
            && prometheus.query("up{job=\"wrong-password\"} == 0").1 == 1)
            .then_some(())
    });
    assert_eq!(
        prometheus
            .query("sqlite_up{job=\"good\",db=\"app\"} == 1")
            .1,
        1,
        "the metrics arrived over https"
    );
    assert_eq!(
        prometheus.query("sqlite_up{job=\"wrong-password\"}").1,
        0,
        "nothing was served without the right password"
    );
}

#[test]
fn client_certificates_are_verified_when_required() {
    let f = Files::new();
    let clients = Pki::new("client CA");
    std::fs::write(f.path("clients.crt"), &clients.ca_pem).unwrap();
    let web = f.web_config(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\n  \
         min_version: TLS13\n",
    );
    let daemon = f.start(&web);
    let url = format!("https://{}/metrics", daemon.addr);

    let signed = clients.leaf(&["prometheus"], ExtendedKeyUsagePurpose::ClientAuth);
    let (status, ..) = get(&agent(Some(&f.pki.ca_pem), Some(&signed)), &url, None).unwrap();
    assert_eq!(status, 200, "a certificate from the client CA is let in");

    assert!(
        get(&agent(Some(&f.pki.ca_pem), None), &url, None).is_err(),
        "no client certificate, no connection"
    );
    let stranger = Pki::new("another CA").leaf(&["mallory"], ExtendedKeyUsagePurpose::ClientAuth);
    assert!(
        get(&agent(Some(&f.pki.ca_pem), Some(&stranger)), &url, None).is_err(),
        "a certificate from another CA is refused"
    );
}

#[test]
fn bad_web_configs_are_refused_at_start_and_on_reload() {
    let f = Files::new();
    let db = f.db.to_str().unwrap().to_string();

    // At start: the daemon does not run, and says which file and field are wrong.
    let refused = |text: &str| {
        let web = f.web_config(text);
        let (code, _, stderr) = run_cli(&[
            "run",
            "--db",
            &db,
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.config.file",
            web.to_str().unwrap(),
        ]);
        assert_ne!(code, 0, "{text}");
        stderr
    };
    let stderr = refused("basic_auth_users: {alice: plaintext}\n");
    assert!(
        stderr.contains("web.yml: basic_auth_users.alice: is not a bcrypt hash"),
        "{stderr}"
    );
    let stderr = refused("tls_server_config: {cert_file: gone.crt, key_file: server.key}\n");
    assert!(
        stderr.contains("tls_server_config.cert_file") && stderr.contains("gone.crt"),
        "{stderr}"
    );

    // On SIGHUP: a good new file takes effect (a changed password), a bad one is refused and
    // the running one kept.
    let web = f.web_config(&format!("basic_auth_users: {{alice: '{}'}}\n", hash("one")));
    let daemon = f.start(&web);
    let client = agent(None, None);
    let url = format!("http://{}/metrics", daemon.addr);
    let status = |password: &str| get(&client, &url, Some(("alice", password))).unwrap().0;
    assert_eq!((status("one"), status("two")), (200, 401));

    f.web_config(&format!("basic_auth_users: {{alice: '{}'}}\n", hash("two")));
    daemon.signal(libc::SIGHUP);
    wait_for(STEP, "the new password", || {
        (status("two") == 200).then_some(())
    });
    assert_eq!(status("one"), 401, "the old password no longer works");

    f.web_config("basic_auth_users: {alice: plaintext}\n");
    daemon.signal(libc::SIGHUP);
    daemon.wait_log("the refusal logged", |l| {
        l.contains("config not reloaded") && l.contains("basic_auth_users.alice")
    });
    assert_eq!(status("two"), 200, "the running config is kept");
}

/// A TLS handshake that offers only `version` against `addr`, trusting `ca_pem`, and a
/// request for `/healthz`: the server's certificate (DER) when it answered 200.
fn handshake(
    addr: &str,
    ca_pem: &str,
    version: &'static rustls::SupportedProtocolVersion,
) -> Result<Vec<u8>, String> {
    use rustls_pki_types::pem::PemObject;
    use std::io::{Read, Write};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    if !answer.starts_with("HTTP/1.1 200") {
        return Err(answer);
    }
    let certs = tls.conn.peer_certificates().ok_or("no certificate")?;
    Ok(certs[0].to_vec())
}

/// The DER of the first certificate in `pem`.
fn der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// docs/deployment.md: `min_version: TLS13` refuses a client that offers TLS 1.2 only; the default takes
/// both.
#[test]
fn min_version_tls13_refuses_a_tls12_client() {
    let f = Files::new();
    let strict = f.web_config(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n",
    );
    let daemon = f.start(&strict);
    let refused = handshake(&daemon.addr, &f.pki.ca_pem, &rustls::version::TLS12);
    assert!(refused.is_err(), "TLS 1.2 refused under min_version: TLS13");
    assert!(handshake(&daemon.addr, &f.pki.ca_pem, &rustls::version::TLS13).is_ok());
    drop(daemon);
    let default =
        f.web_config("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    let daemon = f.start(&default);
    let tls12 = handshake(&daemon.addr, &f.pki.ca_pem, &rustls::version::TLS12);
    assert!(tls12.is_ok(), "TLS 1.2 taken by default: {tls12:?}");
}

/// docs/deployment.md: a renewed certificate is served after SIGHUP, on the same listener.
#[test]
fn a_renewed_certificate_is_served_after_sighup() {
    let f = Files::new();
    let web = f.web_config("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    let daemon = f.start(&web);
    let first = std::fs::read_to_string(f.path("server.crt")).unwrap();
    let tls13 = &rustls::version::TLS13;
    assert_eq!(
        handshake(&daemon.addr, &f.pki.ca_pem, tls13),
        Ok(der(&first))
    );
    let (renewed, key) = f.pki.leaf(
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    std::fs::write(f.path("server.crt"), &renewed).unwrap();
    std::fs::write(f.path("server.key"), key).unwrap();
    daemon.signal(libc::SIGHUP);
    wait_for(STEP, "the renewed certificate served", || {
        (handshake(&daemon.addr, &f.pki.ca_pem, tls13) == Ok(der(&renewed))).then_some(())
    });
}
