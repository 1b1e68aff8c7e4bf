//! SIP servers: the domains accounts live on and how to reach their proxies.

use super::{Result, StorageError, Store, conflict_or};
use crate::registry::{ControllerTrust, Server, Transport};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

fn server_from(row: &AnyRow) -> Result<Server> {
    let transport: String = row.try_get("transport")?;
    let trust: String = row.try_get("trust")?;
    let cost: i64 = row.try_get("cost")?;
    Ok(Server {
        domain: row.try_get("domain")?,
        proxy: row.try_get("proxy")?,
        transport: Transport::parse(&transport)
            .ok_or_else(|| StorageError::Corrupt(format!("server transport {transport:?}")))?,
        cost: u32::try_from(cost)
            .map_err(|_| StorageError::Corrupt(format!("server cost {cost}")))?,
        trust: ControllerTrust::parse(&trust)
            .ok_or_else(|| StorageError::Corrupt(format!("server trust {trust:?}")))?,
    })
}

impl Store {
    /// Adds a server; [`StorageError::Conflict`] when its domain is known.
    pub async fn add_server(&self, server: &Server) -> Result<()> {
        sqlx::query(
            "INSERT INTO servers (domain, proxy, transport, cost, trust) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&server.domain)
        .bind(&server.proxy)
        .bind(server.transport.as_str())
        .bind(i64::from(server.cost))
        .bind(server.trust.as_str())
        .execute(self.pool())
        .await
        .map_err(|e| conflict_or(e, || format!("server {:?}", server.domain)))?;
        Ok(())
    }

    /// Every server, by domain.
    pub async fn servers(&self) -> Result<Vec<Server>> {
        let rows = sqlx::query(
            "SELECT domain, proxy, transport, cost, trust FROM servers ORDER BY domain",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(server_from).collect()
    }

    /// The servers among `domains` (unknown ones are left out).
    pub async fn servers_named(&self, domains: &[String]) -> Result<Vec<Server>> {
        if domains.is_empty() {
            return Ok(Vec::new());
        }
        // Placeholders only, never values, go into the text.
        let placeholders: Vec<String> = (1..=domains.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT domain, proxy, transport, cost, trust FROM servers WHERE domain IN ({}) ORDER BY domain",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for domain in domains {
            query = query.bind(domain);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(server_from).collect()
    }

    /// The server of `domain`.
    pub async fn server(&self, domain: &str) -> Result<Option<Server>> {
        let row = sqlx::query(
            "SELECT domain, proxy, transport, cost, trust FROM servers WHERE domain = $1",
        )
        .bind(domain)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(server_from).transpose()
    }
}
