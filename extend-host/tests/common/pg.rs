//! A PostgreSQL database of its own for each test, on the server that
//! `EXTEND_TEST_DATABASE_URL` names; shared by the host's tests and the
//! cross-crate tests (which include this file by path).
#![allow(dead_code)]

use extend_host::KeyEncryptionKey;
use std::sync::Arc;

/// The variable that points the tests at a PostgreSQL server.
pub const DATABASE_VAR: &str = "EXTEND_TEST_DATABASE_URL";

/// Set to `required` (as `.ci/run` does) to fail, not skip, a PostgreSQL
/// test when [`DATABASE_VAR`] is not set.
pub const REQUIRED_VAR: &str = "EXTEND_TEST_DATABASE";

/// Whether PostgreSQL tests can run. When they cannot, each skipped test
/// says so by name (a plain `cargo test` on a newcomer's machine), or fails
/// when `EXTEND_TEST_DATABASE=required`.
pub fn postgres_enabled() -> bool {
    if std::env::var_os(DATABASE_VAR).is_some() {
        return true;
    }
    // The test harness names each test's thread after the test.
    let test = std::thread::current()
        .name()
        .unwrap_or("a PostgreSQL test")
        .to_owned();
    if std::env::var(REQUIRED_VAR).is_ok_and(|v| v == "required") {
        panic!(
            "{REQUIRED_VAR}=required but {DATABASE_VAR} is not set: {test} cannot run \
             (set {DATABASE_VAR}=postgres://postgres@127.0.0.1:5432/test)"
        );
    }
    eprintln!(
        "SKIPPED {test}: it needs PostgreSQL; set {DATABASE_VAR}=postgres://postgres@127.0.0.1:5432/test to run it"
    );
    false
}

/// A database of its own for one test, dropped (with its connections) when
/// the last holder lets go.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    pub kek: KeyEncryptionKey,
    name: String,
    admin: String,
}

impl TestDb {
    /// A new empty database on the server of `EXTEND_TEST_DATABASE_URL`.
    pub async fn create() -> Arc<TestDb> {
        let admin = std::env::var(DATABASE_VAR).expect("postgres_enabled() was checked");
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "extend_test_{}_{}_{:x}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let client = admin_client(&admin).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create a test database at {admin}: {e}"));
        let url = match admin.rfind('/') {
            Some(i) if admin[..i].contains("://") && !admin[..i].ends_with('/') => {
                let query = admin[i..].find('?').map_or("", |q| &admin[i + q..]);
                format!("{}/{name}{query}", &admin[..i])
            }
            _ => panic!("{DATABASE_VAR} must name a database: postgres://user@host:port/db"),
        };
        Arc::new(TestDb {
            url,
            kek: KeyEncryptionKey::generate(),
            name,
            admin,
        })
    }

    /// A client on this test's database, for looking behind the host's back.
    pub async fn client(&self) -> tokio_postgres::Client {
        admin_client(&self.url).await
    }
}

async fn admin_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {url}: {e}"));
    tokio::spawn(connection);
    client
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop may run outside (or at the end of) a runtime: a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let client = admin_client(&admin).await;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "could not drop the test database {}: {dropped:?}",
                self.name
            );
        }
    }
}
