//! What the daily / at-login check and a followed job's verdict ask of `/connectors`.
//!
//! A failure during a connector outage is "their end", not the user's: both
//! [`triage_user`](crate::policy::jobs::triage_user) and a followed job's
//! [`diagnose_with`](crate::api::models::Job::diagnose_with) weigh the connectors' health, so the
//! same failed job gets the same verdict either way. This decides the one `/connectors` request
//! they need (none when nothing failed).

use std::collections::BTreeSet;

use crate::api::models::Job;
use crate::api::operations::ListConnectors;
use crate::policy::jobs::JobState;

/// The `/connectors` request for the institutions of `jobs`' failures: `None` when nothing
/// failed (then `/connectors` need not be asked at all), every connector when an institution
/// would not quote safely in a filter or a failed job names none.
pub fn connectors_for_failures(jobs: &[Job]) -> Option<ListConnectors> {
    let filter = failed_institutions_filter(jobs)?;
    let op = ListConnectors::new();
    Some(match filter {
        Some(filter) => op.filter(filter),
        None => op,
    })
}

/// The `filter` of [`connectors_for_failures`]: `None` when nothing failed, `Some(None)` for
/// every connector, else `connector.id.in('AU00000',…)`.
pub fn failed_institutions_filter(jobs: &[Job]) -> Option<Option<String>> {
    let failed_jobs = || {
        jobs.iter()
            .filter(|j| matches!(j.state(), JobState::Failed { .. }))
    };
    let failed: BTreeSet<&str> = failed_jobs().filter_map(Job::institution_id).collect();
    if failed.is_empty() {
        return failed_jobs().next().map(|_| None);
    }
    if failed_jobs().any(|j| j.institution_id().is_none())
        || failed
            .iter()
            .any(|i| !i.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return Some(None);
    }
    let list: Vec<String> = failed.iter().map(|i| format!("'{i}'")).collect();
    Some(Some(format!("connector.id.in({})", list.join(","))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(json: serde_json::Value) -> Job {
        serde_json::from_value(json).unwrap()
    }

    fn failed(id: &str, inst: Option<&str>) -> Job {
        job(serde_json::json!({
            "type": "job", "id": id, "institution": inst.map(|i| serde_json::json!({"id": i})),
            "steps": [{"title": "verify-credentials", "status": "failed",
                       "result": {"code": "service-unavailable"}}],
        }))
    }

    fn running(id: &str) -> Job {
        job(serde_json::json!({
            "type": "job", "id": id, "institution": {"id": "AU00000"},
            "steps": [{"title": "verify-credentials", "status": "in-progress", "result": null}],
        }))
    }

    #[test]
    fn connectors_are_asked_only_for_failed_institutions() {
        assert_eq!(failed_institutions_filter(&[]), None);
        assert!(connectors_for_failures(&[running("j1")]).is_none());
        let jobs = [
            failed("j2", Some("AU00001")),
            failed("j3", Some("AU00000")),
            failed("j4", Some("AU00000")),
            running("j5"),
        ];
        assert_eq!(
            failed_institutions_filter(&jobs),
            Some(Some("connector.id.in('AU00000','AU00001')".to_owned()))
        );
        assert_eq!(
            connectors_for_failures(&jobs).unwrap().filter.as_deref(),
            Some("connector.id.in('AU00000','AU00001')")
        );
        assert_eq!(
            failed_institutions_filter(&[failed("j5", Some("it's"))]),
            Some(None)
        );
        // A failure without an institution: ask for every connector, not only the others'.
        assert_eq!(
            failed_institutions_filter(&[failed("j6", None), failed("j7", Some("AU00000"))]),
            Some(None)
        );
        assert_eq!(
            failed_institutions_filter(&[failed("j8", None)]),
            Some(None)
        );
    }
}
