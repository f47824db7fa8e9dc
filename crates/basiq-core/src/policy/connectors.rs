//! Connector (institution) health, as `GET /connectors` reports it.
//!
//! Basiq's handling-jobs guide: when a job fails with `service-unavailable`, check the connector's
//! status on `/connectors`; if it is in `major-outage`, the problem is at *their* end — wait until
//! it is operational instead of retrying or bothering the user (basiq-api.md §4.3 C, §5).
//!
//! The triage logic in [`crate::policy::jobs::triage_user`] works on a deliberately minimal
//! [`ConnectorStatusView`] (id, method, status) rather than the generated
//! [`models::Connector`](crate::api::models::Connector): `ConnectorStatusView::from(&connector)` is
//! three field copies, and the policy does not change when the model gains fields.

use serde::{Deserialize, Serialize};

pub use crate::vocabulary::{ConnectionMethod, ConnectorStatus};

/// The minimum of a connector that the policies need: which institution, which method, how healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorStatusView {
    /// The institution / connector id, e.g. `AU00000`.
    pub id: String,
    /// The method this status is for (`GET /connectors/{id}/{method}`); `None` = any method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<ConnectionMethod>,
    /// The connector's health.
    pub status: ConnectorStatus,
}

impl ConnectorStatusView {
    /// A view for `id` with `status`, for any method.
    pub fn new(id: impl Into<String>, status: ConnectorStatus) -> Self {
        Self {
            id: id.into(),
            method: None,
            status,
        }
    }

    /// Restricts the view to one method.
    pub fn with_method(mut self, method: ConnectionMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Whether this view describes `institution` (and `method`, when both sides know it).
    pub fn applies_to(&self, institution: &str, method: Option<&ConnectionMethod>) -> bool {
        self.id == institution
            && match (&self.method, method) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl From<&crate::api::models::Connector> for ConnectorStatusView {
    /// The view for the connector's institution *and* method (`GET /connectors` lists one entry
    /// per institution and method).
    fn from(connector: &crate::api::models::Connector) -> Self {
        Self {
            id: connector.id.as_str().to_owned(),
            method: Some(connector.method.clone()),
            status: connector.status.clone(),
        }
    }
}

/// The status of `institution` among `connectors`: the worst one when several views apply
/// (an outage anywhere wins), `None` when no view applies.
pub fn status_of<'a>(
    connectors: &'a [ConnectorStatusView],
    institution: &str,
    method: Option<&ConnectionMethod>,
) -> Option<&'a ConnectorStatus> {
    let mut found = None;
    for view in connectors
        .iter()
        .filter(|v| v.applies_to(institution, method))
    {
        match found {
            Some(s) if ConnectorStatus::is_outage(s) => {}
            _ => found = Some(&view.status),
        }
        if matches!(view.status, ConnectorStatus::MajorOutage) {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn outages_are_partial_and_major_only() {
        for (wire, outage) in [
            ("operational", false),
            ("degraded-performance", false),
            ("partial-outage", true),
            ("major-outage", true),
            ("under-maintenance", false),
            ("under-improvement", false),
            ("something-new", false),
        ] {
            let status = ConnectorStatus::from(wire);
            assert_eq!(status.is_outage(), outage, "{wire}");
            assert_eq!(status.as_str(), wire);
        }
        assert!(ConnectorStatus::UnderMaintenance.is_usable());
    }

    #[test]
    fn view_from_the_generated_connector_model() {
        let connector: crate::api::models::Connector = serde_json::from_str(
            r#"{"type":"connector","id":"AU00000","method":"openbanking","stage":"live",
                "status":"major-outage","scopes":null,"authorization":{"type":"user"},
                "stats":null,"links":{"self":"https://au-api.basiq.io/connectors/AU00000/openbanking"}}"#,
        )
        .unwrap();
        let view = ConnectorStatusView::from(&connector);
        assert_eq!(
            view,
            ConnectorStatusView::new("AU00000", ConnectorStatus::MajorOutage)
                .with_method(ConnectionMethod::OpenBanking)
        );
        // It applies to the connection's spelling of the method too.
        let method = ConnectionMethod::from("open-banking");
        assert_eq!(
            status_of(&[view], "AU00000", Some(&method)),
            Some(&ConnectorStatus::MajorOutage)
        );
        assert!(connector.scopes.is_empty());
    }

    #[test]
    fn both_open_banking_spellings_are_one_method() {
        assert_eq!(
            ConnectionMethod::from("open-banking"),
            ConnectionMethod::OpenBanking
        );
        assert_eq!(
            ConnectionMethod::from("openbanking"),
            ConnectionMethod::OpenBanking
        );
        let parsed: ConnectionMethod = serde_json::from_str("\"open-banking\"").unwrap();
        assert_eq!(parsed, ConnectionMethod::OpenBanking);
        assert_eq!(
            ConnectionMethod::from("carrier-pigeon"),
            ConnectionMethod::Other("carrier-pigeon".into())
        );
        assert!(!ConnectionMethod::Csv.is_refreshable());
        assert!(ConnectionMethod::Web.is_refreshable());
    }

    #[test]
    fn view_deserializes_from_connector_json() {
        let view: ConnectorStatusView = serde_json::from_str(
            r#"{"id":"AU00000","method":"openbanking","status":"major-outage","stage":"live"}"#,
        )
        .unwrap();
        assert_eq!(view.method, Some(ConnectionMethod::OpenBanking));
        assert!(view.status.is_outage());
    }

    #[test]
    fn status_of_prefers_outages_and_matches_method() {
        let views = [
            ConnectorStatusView::new("AU1", ConnectorStatus::Operational)
                .with_method(ConnectionMethod::Web),
            ConnectorStatusView::new("AU1", ConnectorStatus::MajorOutage)
                .with_method(ConnectionMethod::OpenBanking),
        ];
        assert_eq!(
            status_of(&views, "AU1", Some(&ConnectionMethod::Web)),
            Some(&ConnectorStatus::Operational)
        );
        assert_eq!(
            status_of(&views, "AU1", None),
            Some(&ConnectorStatus::MajorOutage)
        );
        assert_eq!(status_of(&views, "AU2", None), None);
    }

    proptest! {
        #[test]
        fn any_string_round_trips(s in ".*") {
            let status = ConnectorStatus::from(s.as_str());
            prop_assert_eq!(String::from(status), s.clone());
            let method = ConnectionMethod::from(s.as_str());
            let _ = method.is_refreshable();
        }
    }
}
