//! `users`, `connections`, `connectors`, `events`: thin wrappers over the facade's resources.

use basiq::models::NewUser;
use serde_json::json;

use super::to_json;
use crate::cli::{ConnectionsCommand, ConnectorsCommand, EventsCommand, UsersCommand};
use crate::output::{table, CliError, EXIT_OK};
use crate::session::Session;

pub(crate) fn users(s: &Session, cmd: &UsersCommand) -> Result<i32, CliError> {
    let users = s.client.users();
    match cmd {
        UsersCommand::Create {
            email,
            mobile,
            first_name,
            last_name,
        } => {
            let user = users.create(NewUser {
                email: email.clone(),
                mobile: mobile.clone(),
                first_name: first_name.clone(),
                last_name: last_name.clone(),
                ..NewUser::default()
            })?;
            if s.out.json {
                s.out.json(&to_json(&user));
            } else {
                s.out.line(format!(
                    "Created user {} ({})",
                    user.id,
                    contact(user.email.as_deref(), user.mobile.as_deref())
                ));
            }
        }
        UsersCommand::Get { user } => {
            let user = users.get(user.as_str())?;
            if s.out.json {
                s.out.json(&to_json(&user));
            } else {
                let name = [user.first_name.as_deref(), user.last_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .filter(|part| !part.trim().is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                s.out.line(table(&[
                    vec!["id".into(), user.id.to_string()],
                    vec!["name".into(), or_dash(Some(name.as_str()))],
                    vec!["email".into(), or_dash(user.email.as_deref())],
                    vec!["mobile".into(), or_dash(user.mobile.as_deref())],
                ]));
            }
        }
        UsersCommand::Delete { user } => {
            users.delete(user.as_str())?;
            if s.out.json {
                s.out.json(&json!({ "deleted": user }));
            } else {
                s.out
                    .line(format!("Deleted user {user} and all their data"));
            }
        }
    }
    Ok(EXIT_OK)
}

pub(crate) fn connections(s: &Session, cmd: &ConnectionsCommand) -> Result<i32, CliError> {
    let connections = s.client.connections();
    match cmd {
        ConnectionsCommand::List { user } => {
            let list = connections.list(user.as_str())?;
            if s.out.json {
                s.out.json(&to_json(&list));
            } else if list.data.is_empty() {
                s.out.line(format!("User {user} has no connections"));
            } else {
                let mut rows = vec![header(&[
                    "connection",
                    "institution",
                    "method",
                    "status",
                    "last used",
                ])];
                rows.extend(list.data.iter().map(connection_row));
                s.out.line(table(&rows));
            }
        }
        ConnectionsCommand::Get { user, connection } => {
            let c = connections.get(user.as_str(), connection.as_str())?;
            if s.out.json {
                s.out.json(&to_json(&c));
            } else {
                let mut rows = vec![header(&[
                    "connection",
                    "institution",
                    "method",
                    "status",
                    "last used",
                ])];
                rows.push(connection_row(&c));
                s.out.line(table(&rows));
            }
        }
        ConnectionsCommand::Purge { user, connection } => {
            connections.purge(user.as_str(), connection.as_str())?;
            if s.out.json {
                s.out.json(&json!({ "purged": connection, "userId": user }));
            } else {
                s.out.line(format!(
                    "Purged the data of connection {connection} (user {user}); the connection \
                     stays and its next successful refresh brings fresh data"
                ));
            }
        }
    }
    Ok(EXIT_OK)
}

pub(crate) fn connectors(s: &Session, cmd: &ConnectorsCommand) -> Result<i32, CliError> {
    let ConnectorsCommand::List { outages } = cmd;
    let list = s.client.connectors().list()?;
    let shown: Vec<_> = list
        .data
        .iter()
        .filter(|c| !outages || c.status.is_outage())
        .collect();
    if s.out.json {
        s.out.json(
            &json!({ "type": "list", "data": shown.iter().map(to_json).collect::<Vec<_>>() }),
        );
        return Ok(EXIT_OK);
    }
    if shown.is_empty() {
        s.out.line(if *outages {
            "No connector reports an outage"
        } else {
            "No connectors"
        });
        return Ok(EXIT_OK);
    }
    let mut rows = vec![header(&["connector", "method", "status", "name"])];
    for c in shown {
        let status = c.status.to_string();
        rows.push(vec![
            c.id.to_string(),
            c.method.to_string(),
            if c.status.is_outage() {
                s.out.bad(&status)
            } else {
                status
            },
            or_dash(c.institution.as_ref().and_then(|i| i.name.as_deref())),
        ]);
    }
    s.out.line(table(&rows));
    if *outages {
        s.out.line(s.out.dim(
            "An outage is their end: failed jobs there are not the user's problem; retry once \
             the connector is operational.",
        ));
    }
    Ok(EXIT_OK)
}

pub(crate) fn events(s: &Session, cmd: &EventsCommand) -> Result<i32, CliError> {
    let EventsCommand::List { event_type, user } = cmd;
    let filter = events_filter(event_type.as_deref(), user.as_deref())?;
    let events = s.client.events();
    let list = match &filter {
        Some(filter) => events.list_filtered(filter.as_str())?,
        None => events.list()?,
    };
    if s.out.json {
        s.out.json(&to_json(&list));
        return Ok(EXIT_OK);
    }
    if list.data.is_empty() {
        s.out.line("No events in the last 7 days match");
        return Ok(EXIT_OK);
    }
    let mut rows = vec![header(&["when", "type", "user", "event"])];
    for e in &list.data {
        let kind = match (e.entity.as_deref(), e.event_type.as_deref()) {
            (Some(entity), Some(what)) => format!("{entity}.{what}"),
            (one, other) => or_dash(one.or(other)),
        };
        rows.push(vec![
            e.created_date
                .map(crate::output::rfc3339)
                .unwrap_or_else(|| "-".into()),
            kind,
            or_dash(e.user_id.as_deref()),
            e.id.clone(),
        ]);
    }
    s.out.line(table(&rows));
    Ok(EXIT_OK)
}

/// Basiq's `filter` for `GET /events` (`event.type.eq('…'),user.id.eq('…')`). A value that could
/// break out of its quotes is refused rather than escaped: no event type or id contains one.
fn events_filter(event_type: Option<&str>, user: Option<&str>) -> Result<Option<String>, CliError> {
    let mut terms = Vec::new();
    for (field, value) in [("event.type", event_type), ("user.id", user)] {
        let Some(value) = value else { continue };
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if value.is_empty() || !value.chars().all(plain) {
            return Err(CliError::usage(format!(
                "{field} {value:?}: only letters, digits, '.', '-' and '_'"
            )));
        }
        terms.push(format!("{field}.eq('{value}')"));
    }
    Ok((!terms.is_empty()).then(|| terms.join(",")))
}

fn connection_row(c: &basiq::models::Connection) -> Vec<String> {
    vec![
        c.id.to_string(),
        or_dash(c.institution.as_ref().map(|i| i.id.as_str())),
        c.method
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string),
        c.status.to_string(),
        c.last_used
            .map(crate::output::rfc3339)
            .unwrap_or_else(|| "-".into()),
    ]
}

pub(crate) fn header(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_uppercase()).collect()
}

pub(crate) fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_owned()
}

/// Basiq sends absent contact fields as `""`.
fn contact(email: Option<&str>, mobile: Option<&str>) -> String {
    fn present(v: Option<&str>) -> Option<&str> {
        v.filter(|v| !v.trim().is_empty())
    }
    match (present(email), present(mobile)) {
        (Some(e), Some(m)) => format!("{e}, {m}"),
        (Some(x), None) | (None, Some(x)) => x.to_owned(),
        (None, None) => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::events_filter;

    #[test]
    fn events_filter_joins_terms_and_refuses_quotes() {
        assert_eq!(events_filter(None, None).ok().flatten(), None);
        assert_eq!(
            events_filter(Some("consent.revoked"), Some("ea3a81"))
                .ok()
                .flatten()
                .as_deref(),
            Some("event.type.eq('consent.revoked'),user.id.eq('ea3a81')")
        );
        assert!(events_filter(Some("x'),user.id.eq('y"), None).is_err());
        assert!(events_filter(None, Some("")).is_err());
    }
}
