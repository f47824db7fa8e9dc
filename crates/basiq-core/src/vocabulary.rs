//! The shared vocabulary: Basiq's open enums that both the generated models and the policies
//! speak. They live below both, so the models never import a policy module (and the policies
//! re-export them where their rules use them: `policy::connectors`, `policy::refresh`).

use crate::open_enum::open_enum;

open_enum!(
    /// A connector's health. Basiq's filter regex lists `operational | degraded-performance |
    /// partial-outage | major-outage | under-maintenance`; the v2 spec adds `under-improvement`.
    ConnectorStatus {
        /// Working normally.
        Operational => "operational",
        /// Working, but slowly.
        DegradedPerformance => "degraded-performance",
        /// Some jobs fail at the institution's end.
        PartialOutage => "partial-outage",
        /// The institution cannot be reached: wait until it is operational.
        MajorOutage => "major-outage",
        /// Maintenance; Basiq says such connectors "can and should still be used".
        UnderMaintenance => "under-maintenance",
        /// Being improved; still usable.
        UnderImprovement => "under-improvement",
    }
);

impl ConnectorStatus {
    /// Whether the institution is (partly) down at its end: `partial-outage` or `major-outage`.
    /// A failed job against such a connector is "their end: retry when operational".
    ///
    /// `under-maintenance` is **not** an outage: Basiq's institutions guide says those connectors
    /// "can and should still be used".
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::PartialOutage | Self::MajorOutage)
    }

    /// Whether new connections and refreshes should be attempted: everything but an outage.
    /// Unknown statuses are treated as usable — refusing to work on a value we do not know would
    /// be worse than one failed job.
    pub fn is_usable(&self) -> bool {
        !self.is_outage()
    }
}

open_enum!(
    /// How a connection (or connector) reaches the institution. Basiq spells open banking both
    /// `open-banking` (getConnection) and `openbanking` (getConnections, connectors); both map to
    /// [`ConnectionMethod::OpenBanking`].
    ConnectionMethod {
        /// Screen-scraping with the user's credentials.
        Web => "web",
        /// CDR open banking (consent based; 20 refreshes per day).
        OpenBanking => "openbanking" | "open-banking",
        /// Uploaded CSV statement (cannot be refreshed).
        Csv => "csv",
        /// Uploaded PDF statement (cannot be refreshed).
        Pdf => "pdf",
    }
);

impl ConnectionMethod {
    /// Whether Basiq can refresh a connection of this kind (uploaded statements cannot be).
    /// Unknown methods are assumed refreshable; Basiq will say otherwise.
    pub fn is_refreshable(&self) -> bool {
        !matches!(self, Self::Csv | Self::Pdf)
    }

    /// Whether refreshes of a connection of this kind count against Basiq's open-banking limit
    /// of 20 a day: open banking, and — the conservative choice — any method this SDK does not
    /// know (or a connection that states none), so an unexpected value never lifts the limit.
    pub fn has_daily_refresh_quota(&self) -> bool {
        matches!(self, Self::OpenBanking | Self::Other(_))
    }
}

open_enum!(
    /// A connection's status. The spec lists `active | pending | invalid | pre-init`; the guide
    /// adds `init` and `deleted`, so the enum stays open (basiq-api.md §3.3).
    ConnectionStatus {
        /// All steps OK: the only status that may be refreshed.
        Active => "active",
        /// Web: new, credentials not verified yet.
        Pending => "pending",
        /// A step failed; a web connection needs new credentials before a refresh can work.
        Invalid => "invalid",
        /// Open banking: created, the user has not finished authorising.
        PreInit => "pre-init",
        /// Open banking: authorisation passed, transient.
        Init => "init",
        /// Removed by the partner.
        Deleted => "deleted",
    }
);
