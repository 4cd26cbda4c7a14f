//! Starting and stopping a host.

use crate::api::{self, App};
use crate::auth::Auth;
use crate::config::{Limits, default_workers};
use crate::crypto::{KeyEncryptionKey, Keys, random_hex};
use crate::error::HostError;
use crate::logs::LogHub;
use crate::sandbox::{Executor, ExecutorStats, Isolation};
use crate::store::{Change, PostgresStore, SqliteStore, Store};
use crate::token::{self, Claims};
use crate::webtasks::Webtasks;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Configures a host before it starts: `Host::builder().memory().start().await?`.
#[derive(Clone)]
pub struct HostBuilder {
    data: Option<PathBuf>,
    store: Option<Arc<dyn Store>>,
    database: Option<String>,
    kek: Option<KeyEncryptionKey>,
    listen: SocketAddr,
    limits: Limits,
    workers: Option<usize>,
    public_url: Option<String>,
    isolation: Isolation,
    metrics_token: Option<String>,
    egress: crate::egress::EgressPolicy,
}

impl Default for HostBuilder {
    /// In memory, listening on `127.0.0.1:0`.
    fn default() -> Self {
        HostBuilder {
            data: None,
            store: None,
            database: None,
            kek: None,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            limits: Limits::default(),
            workers: None,
            public_url: None,
            isolation: Isolation::InProcess,
            metrics_token: None,
            egress: crate::egress::EgressPolicy::default(),
        }
    }
}

impl std::fmt::Debug for HostBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostBuilder")
            .field("data", &self.data)
            .field("custom_store", &self.store.is_some())
            .field("database", &self.database.is_some())
            .field("listen", &self.listen)
            .field("limits", &self.limits)
            .field("workers", &self.workers)
            .field("public_url", &self.public_url)
            .field("isolation", &self.isolation)
            .finish()
    }
}

impl HostBuilder {
    /// Keeps everything in memory: keys, master token and webtasks are gone when the host stops. The default.
    pub fn memory(mut self) -> Self {
        self.data = None;
        self
    }

    /// Keeps state in `dir` (created if missing): `extend.db` (SQLite), `keys.json`
    /// and `master-token`, the last two readable only by the owner.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data = Some(dir.into());
        self
    }

    /// Keeps everything in the PostgreSQL database at `url`
    /// (`postgres://user@host:port/db`), which other hosts may share: they
    /// see each other's writes, revocations and log records within
    /// milliseconds (see [`PostgresStore`]). The signing and sealing keys and
    /// the master token live in the database, sealed with the
    /// [`key_encryption_key`](HostBuilder::key_encryption_key), which is
    /// required. Replaces [`memory`](HostBuilder::memory); together with
    /// [`data_dir`](HostBuilder::data_dir) or [`store`](HostBuilder::store),
    /// which also choose where state lives, [`start`](HostBuilder::start)
    /// refuses with [`HostError::Contradiction`].
    pub fn database(mut self, url: impl Into<String>) -> Self {
        self.database = Some(url.into());
        self
    }

    /// The key that seals the keys hosts on one [`database`](HostBuilder::database)
    /// share; every node must be given the same one.
    pub fn key_encryption_key(mut self, key: KeyEncryptionKey) -> Self {
        self.kek = Some(key);
        self
    }

    /// The address to listen on. Default `127.0.0.1:0` (a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Stores webtasks and revocations in `store` instead of the SQLite
    /// database of [`data_dir`](HostBuilder::data_dir) (or memory). Keys and
    /// the master token still come from the data directory, so hosts that
    /// share a store and a data directory accept each other's tokens. If the
    /// store announces other hosts' writes ([`Store::changes`]), this host
    /// follows them. Refused together with [`database`](HostBuilder::database).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The limits runs and requests are held to.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The number of JavaScript executor threads. Default: four per core, at least eight.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n.max(1));
        self
    }

    /// Runs JavaScript in worker processes started from `program` (with the
    /// argument `worker`), one per executor thread. A run that does not stop
    /// at its time limit is killed with its process; without worker
    /// processes, runs share this process and such a run can only be
    /// abandoned, holding a core until it ends (see the README's isolation
    /// section). `extend-host serve` always uses worker processes; a program
    /// that names itself must call [`worker_main_if_requested`](crate::worker_main_if_requested).
    pub fn worker_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.isolation = Isolation::Processes(program.into());
        self
    }

    /// What extensions' `fetch` may reach. Default: http and https on ports
    /// 80 and 443 of public addresses only (see [`EgressPolicy`](crate::EgressPolicy)).
    pub fn egress(mut self, policy: crate::egress::EgressPolicy) -> Self {
        self.egress = policy;
        self
    }

    /// A token that reads `GET /metrics` (as `Authorization: Bearer`), so
    /// that a Prometheus server needs no master token. The master token
    /// reads them too. Default: none.
    pub fn metrics_token(mut self, token: impl Into<String>) -> Self {
        self.metrics_token = Some(token.into()).filter(|t| !t.is_empty());
        self
    }

    /// The base of the `webtask_url`s handed out, when clients reach the host
    /// through another address (a proxy). Default `http://{listen address}`.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Opens the storage, starts the executor and listens. Must be called within a tokio runtime.
    pub async fn start(self) -> Result<Host, HostError> {
        // Each of these picks where webtasks live; silently preferring one
        // would lose the other's data without a word.
        if self.database.is_some() && self.store.is_some() {
            return Err(HostError::Contradiction(
                "HostBuilder::database and HostBuilder::store both choose the store: give one",
            ));
        }
        if self.database.is_some() && self.data.is_some() {
            return Err(HostError::Contradiction(
                "HostBuilder::database keeps keys and webtasks in PostgreSQL, and \
                 HostBuilder::data_dir in a directory: give one",
            ));
        }
        let (keys, master, created, store): (_, _, _, Arc<dyn Store>) = match &self.database {
            Some(url) => {
                let kek = self.kek.as_ref().ok_or(HostError::MissingKey)?;
                let store = PostgresStore::connect(url)
                    .await
                    .map_err(HostError::Storage)?;
                let shared = store
                    .shared_keys(kek, mint_master)
                    .await
                    .map_err(HostError::Storage)?;
                (
                    shared.keys,
                    shared.master_token,
                    shared.created,
                    Arc::new(store),
                )
            }
            None => {
                let (keys, master, created) = match &self.data {
                    None => {
                        let keys = Keys::generate();
                        let master = mint_master(&keys);
                        (keys, master, true)
                    }
                    Some(dir) => open_data_dir(dir)?,
                };
                let store: Arc<dyn Store> = match (&self.store, &self.data) {
                    (Some(store), _) => Arc::clone(store),
                    (None, None) => Arc::new(SqliteStore::memory().map_err(HostError::Storage)?),
                    (None, Some(dir)) => Arc::new(
                        SqliteStore::open(&dir.join("extend.db")).map_err(HostError::Storage)?,
                    ),
                };
                (keys, master, created, store)
            }
        };
        let master_jti = token::decode(&keys, &master, crate::time::unix_now())
            .map_err(|e| HostError::BadKeyFile {
                path: self.data.clone().unwrap_or_default().join("master-token"),
                reason: format!(
                    "the master token does not verify with keys.json: {}",
                    e.message
                ),
            })?
            .jti;
        let revoked = store.revoked().await.map_err(HostError::Storage)?;
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| HostError::Bind {
                addr: self.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| HostError::Bind {
            addr: self.listen,
            source,
        })?;
        let url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let remote_logs = store.remote_logs();
        let relay = remote_logs.as_ref().map(|_| Arc::clone(&store));
        let logs = LogHub::new(&self.limits, relay);
        let executor = Executor::start(
            self.limits.clone(),
            logs.clone(),
            self.workers.unwrap_or_else(default_workers),
            self.isolation.clone(),
            crate::egress::Egress::new(self.egress.clone()).with_extras(extras_loader(&store)),
        )
        .map_err(HostError::Executor)?;
        let keys = Arc::new(keys);
        let changes = store.changes();
        let mut app = App::new(
            Auth::new(Arc::clone(&keys), master_jti, revoked),
            Webtasks::new(store, keys, self.limits.clone()),
            executor,
            logs,
            self.limits,
            &url,
        );
        app.metrics_token = self.metrics_token;
        let app = Arc::new(app);
        if let Some(changes) = changes {
            tokio::spawn(follow_changes(Arc::clone(&app), changes));
        }
        if let Some(remote) = remote_logs {
            tokio::spawn(follow_remote_logs(Arc::clone(&app), remote));
        }
        let stop = app.shutdown.clone();
        let front = api::Front::new(Arc::clone(&app));
        let server = tokio::spawn(crate::serve::serve(
            listener,
            front,
            app.limits.clone(),
            stop,
        ));
        tracing::info!(%url, "extend-host listening");
        Ok(Host {
            url: url.trim_end_matches('/').to_owned(),
            addr,
            master_token: master,
            created_master_token: created,
            app,
            server: Some(server),
        })
    }
}

/// Applies the changes committed to the store (by any host sharing it) to
/// this host's caches, until shutdown.
async fn follow_changes(app: Arc<App>, mut changes: tokio::sync::broadcast::Receiver<Change>) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let change = tokio::select! {
            () = app.shutdown.cancelled() => return,
            received = changes.recv() => match received {
                Ok(change) => change,
                Err(RecvError::Lagged(_)) => Change::Missed,
                Err(RecvError::Closed) => return,
            },
        };
        app.webtasks.changed(&change);
        match change {
            Change::Revoked { jti } => app.auth.revoked(jti),
            Change::Webtask(w) if w.deleted => {
                app.executor.forget(&w.container);
                // A container left without webtasks loses its metric series.
                if let Ok(usage) = app.webtasks.usage(&w.container).await
                    && usage.webtasks == 0
                {
                    app.metrics.forget_container(&w.container);
                }
            }
            Change::Missed => match app.webtasks.revoked().await {
                Ok(revoked) => app.auth.reload_revoked(revoked),
                // The set only grows; what this host had stays refused, and
                // the next reconnect tries again.
                Err(e) => tracing::warn!(error = %e, "cannot reload the revoked tokens"),
            },
            _ => {}
        }
    }
}

/// Hands log records of runs on other hosts to this host's log streams.
async fn follow_remote_logs(
    app: Arc<App>,
    mut logs: tokio::sync::broadcast::Receiver<crate::store::RemoteLog>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        tokio::select! {
            () = app.shutdown.cancelled() => return,
            received = logs.recv() => match received {
                Ok(log) => app.logs.publish(&log.container, log.record.into()),
                Err(RecvError::Lagged(n)) => tracing::warn!(missed = n, "log records of other hosts dropped: this host fell behind"),
                Err(RecvError::Closed) => return,
            },
        }
    }
}

fn mint_master(keys: &Keys) -> String {
    token::encode(
        keys,
        &Claims {
            jti: random_hex::<16>(),
            iat: crate::time::unix_now(),
            ..Claims::default()
        },
    )
}

/// Reads or creates the keys and the master token in `dir`.
fn open_data_dir(dir: &Path) -> Result<(Keys, String, bool), HostError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| HostError::DataDir { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // Only the owner may look inside: it holds the keys and the database.
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(io(dir))?;
    let key_path = dir.join("keys.json");
    let token_path = dir.join("master-token");
    let keys = match std::fs::read_to_string(&key_path) {
        Ok(text) => Keys::from_file(&text).map_err(|reason| HostError::BadKeyFile {
            path: key_path.clone(),
            reason,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keys = Keys::generate();
            write_private(&key_path, keys.to_file().as_bytes()).map_err(io(&key_path))?;
            keys
        }
        Err(e) => return Err(io(&key_path)(e)),
    };
    match std::fs::read_to_string(&token_path) {
        Ok(t) => Ok((keys, t.trim().to_owned(), false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let master = mint_master(&keys);
            write_private(&token_path, master.as_bytes()).map_err(io(&token_path))?;
            Ok((keys, master, true))
        }
        Err(e) => Err(io(&token_path)(e)),
    }
}

/// Writes a file readable only by the owner, atomically: a crash leaves the old file or the new one.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// A running host. Dropping it stops the server without waiting; call
/// [`Host::shutdown`] to let requests in flight finish.
#[derive(Debug)]
pub struct Host {
    url: String,
    addr: SocketAddr,
    master_token: String,
    created_master_token: bool,
    app: Arc<App>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Host {
    /// A builder with the defaults: in memory, listening on `127.0.0.1:0`.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// The base URL, e.g. `http://127.0.0.1:8721` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address the host listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The master token: full control of every container. Never hand it to a tenant.
    pub fn master_token(&self) -> &str {
        &self.master_token
    }

    /// Whether this start created the master token (first start of a data
    /// directory, or any in-memory host).
    pub fn created_master_token(&self) -> bool {
        self.created_master_token
    }

    /// The URL that runs `name` in `container`.
    pub fn webtask_url(&self, container: &str, name: &str) -> String {
        self.app.webtask_url(container, name)
    }

    /// Executor counters: live threads, threads replaced after a stuck run, resident containers.
    pub fn executor_stats(&self) -> ExecutorStats {
        self.app.executor.stats()
    }

    /// Runs of `container` admitted and not yet answered, running or queued.
    pub fn runs_in_flight(&self, container: &str) -> usize {
        self.app.executor.in_flight(container)
    }

    /// How many `GET /api/webtask/{container}` (list) calls the host has
    /// served: the discovery traffic clients cause.
    pub fn list_requests(&self) -> u64 {
        self.app
            .counters
            .lists
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many clients follow `container`'s log stream right now.
    pub fn log_subscribers(&self, container: &str) -> usize {
        self.app.logs.subscribers(container)
    }

    /// Containers whose log stream has a channel: only those someone follows.
    pub fn log_channels(&self) -> usize {
        self.app.logs.channels()
    }

    /// Bytes the JavaScript heap of `container` holds, when it is in memory and idle.
    pub fn container_heap_bytes(&self, container: &str) -> Option<i64> {
        self.app.executor.heap_bytes(container)
    }

    /// Stops accepting connections, ends log streams, waits for requests in
    /// flight, then stops the executor threads.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.app.shutdown.cancel();
        let result = match self.server.take() {
            Some(server) => server
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        };
        self.app.executor.stop();
        result
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.app.shutdown.cancel();
            server.abort();
            self.app.executor.stop();
        }
    }
}

/// Reads a container's extra egress hosts from `store`, for the egress client.
fn extras_loader(store: &Arc<dyn Store>) -> crate::egress::ExtrasLoader {
    let store = Arc::clone(store);
    Arc::new(move |container: String| {
        let store = Arc::clone(&store);
        Box::pin(async move {
            store
                .container_egress(&container)
                .await
                .map_err(|e| e.to_string())
        })
    })
}
