//! TLS for plugins' outbound connections: the one client configuration every plugin shares, and
//! the test that tells a TLS failure from any other I/O error.
//!
//! Owns which certificates are trusted (the Mozilla roots of `webpki-roots`, plus the authorities
//! of `[outbound] ca_file`), the protocol versions (rustls's safe defaults: TLS 1.2 and 1.3, with
//! the `ring` provider; no OpenSSL) and the ALPN offer (`http/1.1` only: the client speaks
//! nothing else). It must not connect or pick names: the connector hands it a TCP stream and the
//! URL's host, which becomes the SNI name and the name the certificate is verified against.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The ALPN protocol offered: servers that speak HTTP/2 must not pick it, the client is HTTP/1.1.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Why the TLS configuration could not be built (all of them about `ca_file`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsConfigError {
    #[error("cannot read ca_file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("ca_file {path} is not PEM certificates: {reason}")]
    NotPem { path: String, reason: String },
    #[error("ca_file {path} holds no certificate")]
    Empty { path: String },
    #[error("cannot build the TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The client configuration: the standard roots, plus every certificate of `ca_file` (a PEM
/// bundle) when there is one.
pub(crate) fn client_config(
    ca_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| TlsConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| TlsConfigError::NotPem {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            roots.add(cert).map_err(|e| TlsConfigError::NotPem {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsConfigError::Empty { path: shown });
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// Whether `e` is a TLS failure: a `rustls::Error`, or `io::Error`s wrapping one (tokio-rustls
/// wraps it in one). An `io::Error`'s `source()` skips the error it wraps, so a walk of sources
/// alone never sees it.
pub(crate) fn is_tls(mut e: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if e.is::<rustls::Error>() {
            return true;
        }
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => e = inner,
            None => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `client_config` of a `ca_file` holding `contents` (none: a path with no file).
    fn with_ca_file(name: &str, contents: Option<&str>) -> (String, Result<(), TlsConfigError>) {
        let path =
            std::env::temp_dir().join(format!("wasmgate-tls-{}-{name}.pem", std::process::id()));
        if let Some(contents) = contents {
            std::fs::write(&path, contents).expect("a scratch file");
        }
        let result = client_config(Some(&path)).map(|_| ());
        let _ = std::fs::remove_file(&path);
        (path.display().to_string(), result)
    }

    #[test]
    fn the_standard_roots_alone_make_a_configuration_offering_http1() {
        let config = client_config(None).expect("the standard roots");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn an_unusable_ca_file_is_an_error_naming_it() {
        let (path, result) = with_ca_file("missing", None);
        let err = result.expect_err("no file");
        assert!(matches!(err, TlsConfigError::Read { .. }), "{err}");
        assert!(err.to_string().contains(&path), "{err}");

        let (path, result) = with_ca_file("empty", Some("no certificate here\n"));
        let err = result.expect_err("no certificate");
        assert!(matches!(err, TlsConfigError::Empty { .. }), "{err}");
        assert!(err.to_string().contains(&path), "{err}");

        let bad_base64 = "-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n";
        let (path, result) = with_ca_file("bad-base64", Some(bad_base64));
        let err = result.expect_err("not base64");
        assert!(matches!(err, TlsConfigError::NotPem { .. }), "{err}");
        assert!(err.to_string().contains(&path), "{err}");

        let not_a_certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let (path, result) = with_ca_file("not-a-certificate", Some(not_a_certificate));
        let err = result.expect_err("three zero bytes are no certificate");
        assert!(matches!(err, TlsConfigError::NotPem { .. }), "{err}");
        assert!(err.to_string().contains(&path), "{err}");
    }
}
