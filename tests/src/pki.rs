//! Certificates for the TLS tests, made in the test: a CA, a server certificate for
//! `localhost` and `127.0.0.1` issued by it, and client certificates, all written as PEM files
//! into a directory the test owns.

use std::path::{Path, PathBuf};

use kanband_gateway::TlsFiles;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// A test CA and the files it issued, under one directory.
#[derive(Debug)]
pub struct Pki {
    dir: PathBuf,
    name: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

impl Pki {
    /// A new CA called `name`, its files kept in `dir` (created).
    pub fn new(dir: &Path, name: &str) -> Pki {
        std::fs::create_dir_all(dir).expect("create the PKI directory");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-signed CA");
        std::fs::write(dir.join(format!("{name}-ca.pem")), issuer.pem()).expect("write the CA");
        Pki {
            dir: dir.to_owned(),
            name: name.to_owned(),
            issuer,
        }
    }

    /// The CA certificate's file (what clients pass as `--ca`, servers as `--tls-client-ca`).
    pub fn ca(&self) -> PathBuf {
        self.dir.join(format!("{}-ca.pem", self.name))
    }

    /// A server certificate for `localhost` and `127.0.0.1`.
    pub fn server(&self) -> CertFiles {
        self.issue(
            "server",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate for `who`.
    pub fn client(&self, who: &str) -> CertFiles {
        self.issue(who, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// What a client of a server with this CA's certificate passes: `--ca` only.
    pub fn trust(&self) -> TlsFiles {
        TlsFiles {
            ca: Some(self.ca()),
            ..TlsFiles::default()
        }
    }

    fn issue(&self, who: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) -> CertFiles {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("certificate parameters");
        params.distinguished_name.push(DnType::CommonName, who);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("issue");
        let files = CertFiles {
            cert: self.dir.join(format!("{}-{who}.pem", self.name)),
            key: self.dir.join(format!("{}-{who}.key", self.name)),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write the certificate");
        std::fs::write(&files.key, key.serialize_pem()).expect("write the key");
        files
    }
}
