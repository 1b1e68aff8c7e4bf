//! Everything a route query reads, in one statement: the caller's contact,
//! both sides' talkers with their accounts, and the servers those accounts
//! (and an address contact) live on. One round trip instead of three matters
//! on PostgreSQL, where each costs about half a millisecond
//! (docs/benchmarks.md, route query).

use super::contacts::{ACCEPTED, contact_from_prefixed};
use super::servers::server_from_prefixed;
use super::talkers::{account_from_prefixed, talker_from_prefixed};
use super::{ContactView, Result, Store};
use crate::registry::{Account, Server, Talker, UserId};
use sqlx::{AssertSqlSafe, Row};

/// What a route query ranks: a contact and the registry rows around it.
#[derive(Debug, Clone)]
pub struct RouteInputs {
    /// The owner's contact, with whether it is accepted.
    pub contact: ContactView,
    /// The owner's talkers, then (for a user contact) the callee's, each
    /// owner's oldest first, each talker's accounts in its own order.
    pub talkers: Vec<(Talker, Vec<Account>)>,
    /// The known servers of those accounts and of an address contact,
    /// by domain.
    pub servers: Vec<Server>,
}

/// Contact, talker, account and server columns, aliased apart by prefix. The
/// contact (with its acceptance, a subquery) is computed once, not per row.
fn route_inputs_sql() -> String {
    format!(
        "WITH c AS MATERIALIZED (\
           SELECT c.id, c.owner, c.name, c.user_id, c.aor, c.server, {ACCEPTED} AS accepted \
           FROM contacts c WHERE c.owner = $1 AND c.name = $2) \
         SELECT c.id AS c_id, c.owner AS c_owner, c.name AS c_name, c.user_id AS c_user_id, \
         c.aor AS c_aor, c.server AS c_server, c.accepted AS c_accepted, \
         t.id AS t_id, t.owner AS t_owner, t.name AS t_name, t.kind AS t_kind, \
         t.media AS t_media, t.public_key AS t_public_key, t.software AS t_software, \
         t.instance AS t_instance, t.last_seen AS t_last_seen, \
         a.talker_id AS a_talker_id, a.aor AS a_aor, a.server AS a_server, \
         a.registered AS a_registered, a.gruu AS a_gruu, \
         s.domain AS s_domain, s.proxy AS s_proxy, s.transport AS s_transport, \
         s.cost AS s_cost, s.trust AS s_trust, \
         cs.domain AS cs_domain, cs.proxy AS cs_proxy, cs.transport AS cs_transport, \
         cs.cost AS cs_cost, cs.trust AS cs_trust \
         FROM c \
         LEFT JOIN talkers t ON t.owner IN (c.owner, c.user_id) \
         LEFT JOIN accounts a ON a.talker_id = t.id \
         LEFT JOIN servers s ON s.domain = a.server \
         LEFT JOIN servers cs ON cs.domain = c.server \
         ORDER BY CASE WHEN t.owner = c.owner THEN 0 ELSE 1 END, t.created_at, t.id, a.position"
    )
}

impl Store {
    /// The contact `owner` calls `callee` and everything needed to rank routes
    /// to it, in one statement; `None` when there is no such contact.
    pub async fn route_inputs(&self, owner: UserId, callee: &str) -> Result<Option<RouteInputs>> {
        let rows = sqlx::query(AssertSqlSafe(route_inputs_sql()))
            .bind(owner)
            .bind(callee)
            .fetch_all(self.pool())
            .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let contact = contact_from_prefixed(first, "c_")?;
        let mut talkers: Vec<(Talker, Vec<Account>)> = Vec::new();
        let mut servers: Vec<Server> = Vec::new();
        let mut add_server = |server: Server| {
            if !servers.iter().any(|s| s.domain == server.domain) {
                servers.push(server);
            }
        };
        let contact_server: Option<String> = first.try_get("cs_domain")?;
        if contact_server.is_some() {
            add_server(server_from_prefixed(first, "cs_")?);
        }
        for row in &rows {
            let Some(id) = row.try_get::<Option<String>, _>("t_id")? else {
                continue; // Nobody on either side has a talker.
            };
            if talkers.last().is_none_or(|(t, _)| t.id != id) {
                talkers.push((talker_from_prefixed(row, "t_")?, Vec::new()));
            }
            let aor: Option<String> = row.try_get("a_aor")?;
            if aor.is_some()
                && let Some((_, accounts)) = talkers.last_mut()
            {
                accounts.push(account_from_prefixed(row, "a_")?);
            }
            let server: Option<String> = row.try_get("s_domain")?;
            if server.is_some() {
                add_server(server_from_prefixed(row, "s_")?);
            }
        }
        servers.sort_by(|a, b| a.domain.cmp(&b.domain));
        Ok(Some(RouteInputs {
            contact,
            talkers,
            servers,
        }))
    }
}
