//! The cluster's certificates and credentials in the data directory: a CA generated on
//! first start, a serving certificate (renewed at each start for the listen address), the
//! admin client certificate (CN `kubernetes-admin`, O `system:masters`), a bearer token,
//! and the admin kubeconfig.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// Failures preparing the credentials.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing a file of the data directory failed.
    #[error("cannot write or read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Generating or signing a certificate failed.
    #[error("certificate generation failed")]
    Certificate(#[from] rcgen::Error),
    /// A stored PEM file is not usable.
    #[error("{path} holds no usable PEM data")]
    Pem {
        /// The file.
        path: PathBuf,
    },
}

/// The credentials the server needs to serve and authenticate.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The cluster CA certificate (PEM).
    pub ca_cert_pem: String,
    /// The serving certificate (PEM).
    pub server_cert_pem: String,
    /// The serving key (PEM).
    pub server_key_pem: String,
    /// The bearer token accepted as admin.
    pub token: String,
    /// The kubeconfig file written for the admin.
    pub kubeconfig: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a file atomically (temporary file, fsync, rename) with the given mode.
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    file.write_all(contents).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

fn read(path: &Path) -> Result<Option<String>, PkiError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn ca_params() -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "berth-ca");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// The host part of a listen address (`127.0.0.1:6443` → `127.0.0.1`, `[::1]:6443` → `::1`).
pub fn listen_host(listen: &str) -> String {
    let host = match listen.rsplit_once(':') {
        Some((host, _)) => host,
        None => listen,
    };
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_string()
}

/// Creates what is missing in `data_dir` and returns the credentials for `listen`.
pub fn ensure(data_dir: &Path, listen: &str) -> Result<Credentials, PkiError> {
    std::fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
    let ca_cert_path = data_dir.join("ca.crt");
    let ca_key_path = data_dir.join("ca.key");
    let (ca_cert_pem, ca_key) = match (read(&ca_cert_path)?, read(&ca_key_path)?) {
        (Some(cert), Some(key)) => {
            let key = KeyPair::from_pem(&key)?;
            (cert, key)
        }
        _ => {
            let key = KeyPair::generate()?;
            let cert = ca_params()?.self_signed(&key)?;
            write_atomic(&ca_key_path, key.serialize_pem().as_bytes(), 0o600)?;
            write_atomic(&ca_cert_path, cert.pem().as_bytes(), 0o644)?;
            (cert.pem(), key)
        }
    };
    let issuer = Issuer::new(ca_params()?, ca_key);

    // The serving certificate follows the listen address, so it is issued at every start.
    let host = listen_host(listen);
    let mut sans = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    if let Some(name) = hostname() {
        sans.push(name);
    }
    if !host.is_empty() && !sans.contains(&host) && host != "0.0.0.0" && host != "::" {
        sans.push(host.clone());
    }
    let mut params = CertificateParams::new(sans)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "berth-apiserver");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate()?;
    let server_cert = params.signed_by(&server_key, &issuer)?;
    write_atomic(
        &data_dir.join("server.crt"),
        server_cert.pem().as_bytes(),
        0o644,
    )?;
    write_atomic(
        &data_dir.join("server.key"),
        server_key.serialize_pem().as_bytes(),
        0o600,
    )?;

    let admin_cert_path = data_dir.join("admin.crt");
    let admin_key_path = data_dir.join("admin.key");
    let (admin_cert_pem, admin_key_pem) = match (read(&admin_cert_path)?, read(&admin_key_path)?) {
        (Some(cert), Some(key)) => (cert, key),
        _ => {
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "kubernetes-admin");
            dn.push(DnType::OrganizationName, "system:masters");
            params.distinguished_name = dn;
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &issuer)?;
            write_atomic(&admin_key_path, key.serialize_pem().as_bytes(), 0o600)?;
            write_atomic(&admin_cert_path, cert.pem().as_bytes(), 0o644)?;
            (cert.pem(), key.serialize_pem())
        }
    };

    let token_path = data_dir.join("token");
    let token = match read(&token_path)? {
        Some(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            let bytes: [u8; 24] = rand::rng().random();
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            write_atomic(&token_path, format!("{token}\n").as_bytes(), 0o600)?;
            token
        }
    };

    let server_host = match host.as_str() {
        "" | "0.0.0.0" | "::" => "127.0.0.1".to_string(),
        h if h.contains(':') => format!("[{h}]"),
        h => h.to_string(),
    };
    let port = listen.rsplit_once(':').map(|(_, p)| p).unwrap_or("6443");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let kubeconfig_text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://{server_host}:{port}\n  name: berth\ncontexts:\n- context:\n    cluster: berth\n    user: kubernetes-admin\n  name: berth\ncurrent-context: berth\npreferences: {{}}\nusers:\n- name: kubernetes-admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(&ca_cert_pem),
        b64(&admin_cert_pem),
        b64(&admin_key_pem),
    );
    let kubeconfig = data_dir.join("kubeconfig.yaml");
    write_atomic(&kubeconfig, kubeconfig_text.as_bytes(), 0o600)?;

    Ok(Credentials {
        ca_cert_pem,
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
        token,
        kubeconfig,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_keeps_ca_and_token_across_starts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ensure(dir.path(), "127.0.0.1:6443").expect("first");
        let second = ensure(dir.path(), "127.0.0.1:7443").expect("second");
        assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
        assert_eq!(first.token, second.token);
        let kubeconfig = std::fs::read_to_string(&second.kubeconfig).expect("kubeconfig");
        assert!(kubeconfig.contains("server: https://127.0.0.1:7443"));
    }

    #[test]
    fn listen_host_strips_port_and_brackets() {
        assert_eq!(listen_host("127.0.0.1:6443"), "127.0.0.1");
        assert_eq!(listen_host("[::1]:6443"), "::1");
    }
}
