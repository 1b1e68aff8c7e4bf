//! Route query latency with a large registry: `BENCH_USERS` users (default one
//! million), each with two talkers and five SIP accounts spread over 1000
//! servers, and two mutual contacts. Measures `find_routes` — the storage reads
//! and the ranking that `GET /v1/routes` and `POST /v1/calls` run — in SQLite
//! (a file, kept in target/ between runs) and in PostgreSQL (a throw-away
//! server). Prints p50/p99 over `BENCH_QUERIES` random queries.
//!
//! `cargo bench -p matcher --bench route_query` (as root: PostgreSQL runs as its
//! own user); `BENCH_ENGINES=sqlite` to skip PostgreSQL.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // A bench: panics are its failure report.

use matcher::registry::Media;
use matcher::route_query::find_routes;
use matcher::storage::Store;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, AssertSqlSafe, Executor};
use std::time::{Duration, Instant};

const SERVERS: usize = 1000;
const ROWS_PER_INSERT: usize = 400;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Server of account `j` of user `i`: one shared with the neighbours (so
/// contacts share a server), the others scattered.
fn server_of(i: usize, j: usize) -> usize {
    if j == 0 {
        (i / 4) % SERVERS
    } else {
        (i.wrapping_mul(2_654_435_761).wrapping_add(j * 97)) % SERVERS
    }
}

async fn insert_rows(pool: &AnyPool, table_cols: &str, rows: &[String]) {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let sql = format!("INSERT INTO {table_cols} VALUES {}", chunk.join(","));
        pool.execute(AssertSqlSafe(sql)).await.unwrap();
    }
}

async fn load(url: &str, users: usize, postgres: bool) {
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let started = Instant::now();
    let servers: Vec<String> = (0..SERVERS)
        .map(|k| {
            format!(
                "('s{k}.example','127.0.0.1:5060','tcp',{},'address')",
                k % 7
            )
        })
        .collect();
    insert_rows(
        &pool,
        "servers (domain, proxy, transport, cost, trust)",
        &servers,
    )
    .await;
    let batch = 20_000;
    for start in (0..users).step_by(batch) {
        let end = (start + batch).min(users);
        let mut u = Vec::new();
        let mut t = Vec::new();
        let mut a = Vec::new();
        for i in start..end {
            u.push(format!("({},'u{i}','User {i}',0)", i + 1));
            for (talker, accounts) in [("a", 0..3), ("b", 3..5)] {
                t.push(format!(
                    "('t{i}{talker}',{},'{talker} of {i}','tv','video','AAAA',NULL,'h{i}{talker}','idle',{},0)",
                    i + 1,
                    2_000_000_000_i64
                ));
                for (pos, j) in accounts.enumerate() {
                    let s = server_of(i, j);
                    a.push(format!(
                        "('t{i}{talker}','sip:u{i}-{j}@s{s}.example','s{s}.example',{pos},1,NULL)"
                    ));
                }
            }
        }
        pool.execute("BEGIN").await.ok();
        // PostgreSQL's identity column takes given ids only when told so.
        let users_cols = if postgres {
            "users (id, name, display_name, created_at) OVERRIDING SYSTEM VALUE"
        } else {
            "users (id, name, display_name, created_at)"
        };
        insert_rows(&pool, users_cols, &u).await;
        insert_rows(
            &pool,
            "talkers (id, owner, name, kind, media, public_key, instance, credential_hash, state, last_seen, created_at)",
            &t,
        )
        .await;
        insert_rows(
            &pool,
            "accounts (talker_id, aor, server, position, registered, gruu)",
            &a,
        )
        .await;
        pool.execute("COMMIT").await.ok();
    }
    // Contacts last: they point at users of later batches.
    for start in (0..users).step_by(batch) {
        let end = (start + batch).min(users);
        let mut c = Vec::new();
        for i in start..end {
            let next = (i + 1) % users + 1;
            let prev = (i + users - 1) % users + 1;
            c.push(format!("({},'next',{next},NULL,NULL)", i + 1));
            c.push(format!("({},'prev',{prev},NULL,NULL)", i + 1));
        }
        pool.execute("BEGIN").await.ok();
        insert_rows(&pool, "contacts (owner, name, user_id, aor, server)", &c).await;
        pool.execute("COMMIT").await.ok();
    }
    // Steady state, as a live registry would be: statistics for the planner
    // and, on PostgreSQL, the fresh rows vacuumed (hint bits and the
    // visibility map set now, rather than by autovacuum or by the first
    // queries that read each page).
    let settle = if postgres {
        "VACUUM ANALYZE"
    } else {
        "ANALYZE"
    };
    pool.execute(settle).await.ok();
    println!(
        "  loaded {users} users, {} talkers, {} accounts in {:.1} s",
        users * 2,
        users * 5,
        started.elapsed().as_secs_f64()
    );
    pool.close().await;
}

async fn measure(engine: &str, url: &str, users: usize, queries: usize) {
    let store = Store::open(url).await.unwrap();
    let mut samples = Vec::with_capacity(queries);
    let mut found = 0;
    let presence = matcher::presence::Presence::default();
    for q in 0..queries + 50 {
        let i = (q * 7919 + 13) % users;
        let user = store.user_by_name(&format!("u{i}")).await.unwrap().unwrap();
        let started = Instant::now();
        let result = find_routes(
            &store,
            &user,
            &[],
            "next",
            Media::Audio,
            i64::MAX,
            &presence,
        )
        .await;
        let took = started.elapsed();
        if q >= 50 {
            samples.push(took);
        }
        if result.is_ok() {
            found += 1;
        }
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{engine:<10} users={users} queries={queries} routes_found={found}  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(pct(1.0))
    );
    store.close().await;
}

#[tokio::main]
async fn main() {
    let users = env_usize("BENCH_USERS", 1_000_000);
    let queries = env_usize("BENCH_QUERIES", 2000);
    let engines = std::env::var("BENCH_ENGINES").unwrap_or_else(|_| "sqlite,postgres".into());
    sqlx::any::install_default_drivers();
    if engines.contains("sqlite") {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("routes-{users}.db"));
        let url = format!("sqlite:{}", path.display());
        if !path.exists() {
            let partial = dir.join(format!("routes-{users}.partial.db"));
            let _ = std::fs::remove_file(&partial);
            let partial_url = format!("sqlite:{}", partial.display());
            Store::open(&partial_url).await.unwrap().close().await;
            println!(
                "sqlite: generating the registry (once; kept at {})",
                path.display()
            );
            load(&format!("sqlite://{}", partial.display()), users, false).await;
            std::fs::rename(&partial, &path).unwrap();
            let _ = std::fs::remove_file(dir.join(format!("routes-{users}.partial.db-wal")));
            let _ = std::fs::remove_file(dir.join(format!("routes-{users}.partial.db-shm")));
        }
        measure("sqlite", &url, users, queries).await;
    }
    if engines.contains("postgres") {
        let pg = testbed::Postgres::start().unwrap();
        let url = pg.create_database("routes").unwrap();
        Store::open(&url).await.unwrap().close().await;
        println!("postgres: generating the registry");
        load(&url, users, true).await;
        // The generated ids bypassed the identity sequence; nothing inserts after.
        measure("postgres", &url, users, queries).await;
    }
}
