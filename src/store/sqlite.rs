//! Persistence of the store in SQLite (`<data dir>/state.db`, WAL, `synchronous=FULL`).
//!
//! One writer thread owns the connection. Writes are queued in resourceVersion order and
//! committed in batches (group commit): under load one fsync covers many writes, and a write is
//! durable once `durable()` reaches its resourceVersion. The API acknowledges a write to a
//! client only after that, so nothing acknowledged is lost when the node dies.
//!
//! Must not: be read from after start-up (the store serves reads from memory), or reorder
//! writes.

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use rusqlite::{Connection, params};
use tokio::sync::watch;

/// One write, in resourceVersion order.
#[derive(Debug)]
pub enum Op {
    Put {
        key: String,
        rv: u64,
        json: Arc<str>,
    },
    Delete {
        key: String,
        rv: u64,
    },
}

/// Errors opening the database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the state database `{path}`")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
}

/// What was stored: every object as `(key, json)`, and the last resourceVersion.
pub struct Loaded {
    pub objects: Vec<(String, String)>,
    pub resource_version: u64,
}

/// The writer thread's handle.
pub struct Persistence {
    tx: Option<mpsc::Sender<Op>>,
    durable: watch::Receiver<u64>,
    thread: Option<JoinHandle<()>>,
}

/// Opens (or creates) the database, loads everything, and starts the writer thread.
pub fn open(path: &Path) -> Result<(Persistence, Loaded), Error> {
    let err = |source| Error::Open {
        path: path.display().to_string(),
        source,
    };
    let conn = Connection::open(path).map_err(err)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=FULL;
         CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, rv INTEGER NOT NULL, json TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);",
    )
    .map_err(err)?;
    let resource_version: u64 = conn
        .query_row("SELECT v FROM meta WHERE k = 'rv'", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|v| v as u64)
        .unwrap_or(0);
    let objects = {
        let mut stmt = conn
            .prepare("SELECT key, json FROM objects ORDER BY rv")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)?
    };
    let (tx, rx) = mpsc::channel::<Op>();
    let (durable_tx, durable) = watch::channel(resource_version);
    let thread = std::thread::Builder::new()
        .name("podvisor-store".to_owned())
        .spawn(move || writer(conn, rx, durable_tx))
        .expect("spawning the store writer thread");
    Ok((
        Persistence {
            tx: Some(tx),
            durable,
            thread: Some(thread),
        },
        Loaded {
            objects,
            resource_version,
        },
    ))
}

impl Persistence {
    /// Queues a write. Writes must be queued in resourceVersion order.
    pub fn write(&self, op: Op) {
        if let Some(tx) = &self.tx {
            // Why ignored: the writer ends only at shutdown, after the last write.
            let _ = tx.send(op);
        }
    }

    /// The last resourceVersion known to be on disk.
    pub fn durable(&self) -> watch::Receiver<u64> {
        self.durable.clone()
    }

    /// Flushes the queue and stops the writer.
    pub fn close(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            // Why ignored: a panicked writer already logged; nothing more to do at shutdown.
            let _ = t.join();
        }
    }
}

impl Drop for Persistence {
    fn drop(&mut self) {
        self.close();
    }
}

fn writer(mut conn: Connection, rx: mpsc::Receiver<Op>, durable: watch::Sender<u64>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(op) = rx.try_recv() {
            batch.push(op);
            if batch.len() >= 4096 {
                break;
            }
        }
        let max_rv = batch
            .iter()
            .map(|op| match op {
                Op::Put { rv, .. } | Op::Delete { rv, .. } => *rv,
            })
            .max()
            .unwrap_or(0);
        let result = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let mut put = tx.prepare_cached(
                    "INSERT INTO objects (key, rv, json) VALUES (?1, ?2, ?3)
                     ON CONFLICT(key) DO UPDATE SET rv = excluded.rv, json = excluded.json",
                )?;
                let mut delete = tx.prepare_cached("DELETE FROM objects WHERE key = ?1")?;
                for op in &batch {
                    match op {
                        Op::Put { key, rv, json } => {
                            put.execute(params![key, *rv as i64, &**json])?;
                        }
                        Op::Delete { key, .. } => {
                            delete.execute(params![key])?;
                        }
                    }
                }
                tx.execute(
                    "INSERT INTO meta (k, v) VALUES ('rv', ?1) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                    params![max_rv as i64],
                )?;
            }
            tx.commit()
        })();
        match result {
            Ok(()) => {
                durable.send_replace(max_rv);
            }
            Err(error) => {
                // The node cannot keep its promise of durability: say so loudly. Objects stay
                // in memory; the next batch tries again with the later state.
                tracing::error!(%error, "cannot write the state database");
            }
        }
    }
}
