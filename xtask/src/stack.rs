//! The local stack: a throwaway PostgreSQL cluster that accepts only TLS, with
//! a CA and server certificate generated here, and the S3/KMS emulator.
//! Dropping a `Stack` stops both and removes the cluster.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::{run, say, tools};

/// Names shared with `infra/` (the Terraform default `name_prefix`).
pub const PREFIX: &str = "copper-gallery";
pub const REGION: &str = "eu-west-1";
pub const DR_REGION: &str = "eu-central-1";

/// The database login of each function (shared/migrations/V8__api_v1_1.sql).
pub const FUNCTION_ROLES: [&str; 4] =
    ["gallery_api", "gallery_processor", "gallery_retention", "gallery_backup_records"];

pub struct Stack {
    pub dir: PathBuf,
    pub pg_port: u16,
    pub moto_port: u16,
    pub ca_file: PathBuf,
    pub superuser_password: String,
    pub owner_password: String,
    pub app_password: String,
    pub backup_password: String,
    postgres: Option<Child>,
    moto: Option<Emulator>,
}

/// The S3/KMS/Secrets Manager emulator on loopback; stopped when dropped.
pub struct Emulator {
    child: Option<Child>,
    pub port: u16,
}

impl Emulator {
    pub fn start(venv: &Path, port: u16, log_dir: &Path) -> Result<Self> {
        Self::start_recording(venv, port, log_dir, None, None)
    }

    /// The emulator; with `recording`, every request it serves is appended
    /// there as a JSON line (`xtask/moto_recording.py`).
    pub fn start_recording(
        venv: &Path,
        port: u16,
        log_dir: &Path,
        recording: Option<&Path>,
        secrets: Option<&Path>,
    ) -> Result<Self> {
        say(&format!("starting the S3/KMS emulator on 127.0.0.1:{port}"));
        let log = fs::File::create(log_dir.join("moto.log"))?;
        let mut command = match recording {
            Some(path) => {
                let mut c = Command::new(venv.join("bin/python"));
                c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("moto_recording.py"))
                    .env("MOTO_ENABLE_RECORDING", "1")
                    .env("MOTO_RECORDER_FILEPATH", path);
                if let Some(secrets) = secrets {
                    c.env("GALLERY_SECRETS_FILE", secrets);
                }
                c
            }
            None => Command::new(venv.join("bin/moto_server")),
        };
        let child = command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("starting moto_server")?;
        let emulator = Self { child: Some(child), port };
        wait_for_port(port, Duration::from_secs(30))
            .context("the emulator did not start; see moto.log")?;
        Ok(emulator)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_child(child);
        }
    }
}

/// SIGINT first (PostgreSQL's fast shutdown; moto exits on it), then kill.
fn stop_child(mut child: Child) {
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub struct StackOptions {
    pub pg_port: u16,
    pub moto_port: u16,
    /// Where the emulator records every request it serves (`cargo xtask test`).
    pub recording: Option<PathBuf>,
    /// Where it notes every secret it hands out (needs `recording`).
    pub secrets: Option<PathBuf>,
}

impl StackOptions {
    /// Free ports chosen by the kernel, so a test run never collides with `dev`.
    pub fn ephemeral() -> Result<Self> {
        Ok(Self { pg_port: free_port()?, moto_port: free_port()?, recording: None, secrets: None })
    }
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// 128 random bits as hex, for the throwaway cluster's passwords.
fn random_secret() -> Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 16];
    fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Stack {
    pub fn start(root: &Path, opts: StackOptions) -> Result<Self> {
        let pg_bin = tools::postgres_bin()?;
        let venv = tools::venv(root)?;
        let account = tools::postgres_account()?;
        // A directory PostgreSQL's unprivileged account can reach whatever the
        // checkout's permissions are.
        let dir = std::env::temp_dir().join(format!(
            "copper-gallery-{}-{}",
            std::process::id(),
            opts.pg_port
        ));
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        let mut stack = Stack {
            ca_file: dir.join("ca.pem"),
            dir,
            pg_port: opts.pg_port,
            moto_port: opts.moto_port,
            superuser_password: random_secret()?,
            owner_password: random_secret()?,
            app_password: random_secret()?,
            backup_password: random_secret()?,
            postgres: None,
            moto: None,
        };
        stack.moto = Some(Emulator::start_recording(
            &venv,
            stack.moto_port,
            &stack.dir,
            opts.recording.as_deref(),
            opts.secrets.as_deref(),
        )?);
        stack.start_postgres(&pg_bin, account.as_deref())?;
        Ok(stack)
    }

    fn start_postgres(&mut self, bin: &Path, account: Option<&str>) -> Result<()> {
        let data = self.dir.join("pgdata");
        let tls = self.dir.join("tls");
        fs::create_dir_all(&tls)?;
        write_certificates(&tls, &self.ca_file)?;
        let pwfile = self.dir.join("superuser-password");
        fs::write(&pwfile, &self.superuser_password)?;
        if let Some(user) = account {
            run(Command::new("chown").args(["-R", &format!("{user}:{user}")]).arg(&self.dir))?;
        }
        let as_account = |program: PathBuf| -> Command {
            match account {
                Some(user) => {
                    let mut c = Command::new("setpriv");
                    c.args(["--reuid", user, "--regid", user, "--init-groups", "--"]).arg(program);
                    c
                }
                None => Command::new(program),
            }
        };
        let mut initdb = as_account(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        run(initdb.stdout(Stdio::null()))?;
        fs::remove_file(&pwfile)?;

        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{dir}'\n\
             ssl = on\nssl_cert_file = '{tls}/server.crt'\nssl_key_file = '{tls}/server.key'\nssl_min_protocol_version = 'TLSv1.2'\n\
             password_encryption = 'scram-sha-256'\nmax_connections = 300\n\
             # As the RDS parameter group: slow statements logged, never a value.\n\
             log_min_duration_statement = 1000\nlog_parameter_max_length = 0\n\
             log_parameter_max_length_on_error = 0\nlog_error_verbosity = terse\n\
             # A throwaway cluster: durability is traded for speed.\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
            port = self.pg_port,
            dir = self.dir.display(),
            tls = tls.display(),
        );
        append(&data.join("postgresql.conf"), &conf)?;
        // TLS only: no `host` line exists, so a plaintext TCP connection finds no
        // matching entry and is refused.
        fs::write(
            data.join("pg_hba.conf"),
            "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
        )?;
        if let Some(user) = account {
            run(Command::new("chown")
                .args(["-R", &format!("{user}:{user}")])
                .arg(&tls)
                .arg(&data))?;
        }

        say(&format!("starting PostgreSQL (TLS only) on 127.0.0.1:{}", self.pg_port));
        let log = fs::File::create(self.dir.join("postgres.log"))?;
        let child = as_account(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()?;
        self.postgres = Some(child);
        wait_for_port(self.pg_port, Duration::from_secs(30))
            .context("PostgreSQL did not start; see postgres.log")?;
        // Accepting TCP is not yet accepting logins; wait for that too.
        let started = Instant::now();
        while self.psql("postgres", "SELECT 1").is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                bail!(
                    "PostgreSQL did not accept connections; see {}",
                    self.dir.join("postgres.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.psql(
            "postgres",
            &format!(
                "CREATE ROLE gallery_owner LOGIN CREATEDB CREATEROLE PASSWORD '{}'; \
                 CREATE ROLE gallery_backup LOGIN PASSWORD '{}'; GRANT gallery_backup TO gallery_owner WITH ADMIN OPTION;",
                self.owner_password, self.backup_password
            ),
        )?;
        // One login per function (the migrations grant each what its code
        // runs). Locally they share one random password; in AWS each has its
        // own secret.
        for role in FUNCTION_ROLES {
            self.psql(
                "postgres",
                &format!(
                    "CREATE ROLE {role} LOGIN PASSWORD '{}'; GRANT {role} TO gallery_owner WITH ADMIN OPTION;",
                    self.app_password
                ),
            )?;
        }
        Ok(())
    }

    /// Runs SQL as the superuser over a verified TLS connection.
    pub fn psql(&self, db: &str, sql: &str) -> Result<()> {
        let dsn = format!(
            "host=localhost port={} user=postgres dbname={db} sslmode=verify-full sslrootcert={}",
            self.pg_port,
            self.ca_file.display()
        );
        let out = Command::new("psql")
            .args([dsn.as_str(), "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
            .env("PGPASSWORD", &self.superuser_password)
            .output()
            .context("running psql")?;
        if !out.status.success() {
            bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// The processes, for the fault tests that pause and restart them.
    pub fn pids(&self) -> (Option<u32>, Option<u32>) {
        (
            self.postgres.as_ref().map(Child::id),
            self.moto.as_ref().and_then(|m| m.child.as_ref()).map(Child::id),
        )
    }

    /// Every password of the throwaway cluster (for the log scan).
    pub fn passwords(&self) -> Vec<String> {
        vec![
            self.superuser_password.clone(),
            self.owner_password.clone(),
            self.app_password.clone(),
            self.backup_password.clone(),
        ]
    }

    /// The variables every function reads, pointing at this stack.
    pub fn env(&self, database: &str) -> Vec<(String, String)> {
        let v = |k: &str, val: String| (k.to_owned(), val);
        vec![
            v("DATABASE_HOST", "localhost".into()),
            v("DATABASE_PORT", self.pg_port.to_string()),
            v("DATABASE_NAME", database.into()),
            // The API's login; every function's own is `DATABASE_<FUNCTION>_USER`.
            v("DATABASE_USER", "gallery_api".into()),
            v("DATABASE_PASSWORD", self.app_password.clone()),
            v("DATABASE_API_USER", "gallery_api".into()),
            v("DATABASE_API_PASSWORD", self.app_password.clone()),
            v("DATABASE_PROCESSOR_USER", "gallery_processor".into()),
            v("DATABASE_PROCESSOR_PASSWORD", self.app_password.clone()),
            v("DATABASE_RETENTION_USER", "gallery_retention".into()),
            v("DATABASE_RETENTION_PASSWORD", self.app_password.clone()),
            v("DATABASE_BACKUP_RECORDS_USER", "gallery_backup_records".into()),
            v("DATABASE_BACKUP_RECORDS_PASSWORD", self.app_password.clone()),
            v("DATABASE_CA_BUNDLE", self.ca_file.display().to_string()),
            v("DATABASE_OWNER_USER", "gallery_owner".into()),
            v("DATABASE_OWNER_PASSWORD", self.owner_password.clone()),
            v("DATABASE_BACKUP_USER", "gallery_backup".into()),
            v("DATABASE_BACKUP_PASSWORD", self.backup_password.clone()),
            v("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", self.moto_port)),
            v("AWS_REGION", REGION.into()),
            v("AWS_ACCESS_KEY_ID", "testing".into()),
            v("AWS_SECRET_ACCESS_KEY", "testing".into()),
            v("GALLERY_ORIGINALS_BUCKET", format!("{PREFIX}-originals")),
            v("GALLERY_PROCESSED_BUCKET", format!("{PREFIX}-processed")),
            v("GALLERY_BACKUPS_BUCKET", format!("{PREFIX}-backups")),
            v("GALLERY_KMS_KEY_ID", format!("alias/{PREFIX}-data")),
            v("GALLERY_BACKUP_KMS_KEY_ID", format!("alias/{PREFIX}-backups")),
            // Backups locked a day (Terraform: the rotation's daily keep).
            v("GALLERY_BACKUP_LOCK_DAYS", "1".into()),
            // The DR replicas, as Terraform names them (`*-dr`, in the DR region).
            v("GALLERY_DR_REGION", DR_REGION.into()),
            v("GALLERY_PROCESSED_REPLICA_BUCKET", format!("{PREFIX}-processed-dr")),
            v("GALLERY_BACKUPS_REPLICA_BUCKET", format!("{PREFIX}-backups-dr")),
            // The backups key's replica, which the emulator cannot make: the
            // drill records the DR copy as not proven on this stack.
            v("GALLERY_BACKUP_REPLICA_KMS_KEY_ID", format!("alias/{PREFIX}-backups")),
            // The local server answers /renditions/* as the distribution does (`local::edge`).
            v("GALLERY_MEDIA_BASE_URL", "http://127.0.0.1:3000".into()),
        ]
    }

    fn stop(&mut self) {
        if let Some(postgres) = self.postgres.take() {
            stop_child(postgres);
        }
        self.moto = None;
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("GALLERY_KEEP_STACK").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn wait_for_port(port: u16, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > timeout {
            bail!("nothing listens on port {port} after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// A CA and a server certificate for `localhost` only: connecting by any other
/// name (127.0.0.1 included) must fail verification, which a test relies on.
fn write_certificates(dir: &Path, ca_file: &Path) -> Result<()> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Copper Gallery local CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate()?;
    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()])?;
    server_params.distinguished_name.push(DnType::CommonName, "localhost");
    let server_cert = server_params.signed_by(&server_key, &issuer)?;

    fs::write(ca_file, ca_cert.pem())?;
    fs::write(dir.join("server.crt"), server_cert.pem())?;
    let key_path = dir.join("server.key");
    fs::write(&key_path, server_key.serialize_pem())?;
    // PostgreSQL refuses a key file others can read.
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}
